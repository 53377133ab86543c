// Package datasource finds the seed a platform hands a machine (cloud-init
// style): kernel command line, NoCloud, OpenStack config drive and metadata
// service, EC2-style metadata (IMDSv2), ZStack, Alibaba Cloud ECS, VMware
// guestinfo and OVF environment, and a seed on the boot medium. One file per
// source, all behind Source.
package datasource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// ErrNotFound means the source is not present on this machine.
var ErrNotFound = errors.New("datasource not found")

// Size limits for what a source may hand us.
const (
	MaxUserData = 16 << 20
	MaxDocument = 1 << 20 // meta-data, network-config, JSON documents
)

// Seed is what a source found. Empty fields were not provided.
type Seed struct {
	Source        string // e.g. "nocloud:/dev/sr1"
	UserData      []byte
	VendorData    []byte
	MetaData      map[string]any
	NetworkConfig []byte
	NetworkFormat string // "v1", "v2", "openstack" or "" when NetworkConfig is empty
	InstanceID    string
	Hostname      string
}

// Source is one place a seed can come from.
type Source interface {
	Name() string
	// Fetch returns the seed, ErrNotFound (possibly wrapped) when the source
	// is absent, or another error when it is present but broken.
	Fetch(ctx context.Context) (*Seed, error)
}

// NetworkSource is implemented by sources that need the network up.
type NetworkSource interface {
	NeedsNetwork() bool
}

// Discover tries sources in order, each under its own timeout, and returns
// the first seed found. Before the first source that needs the network it
// calls networkUp once (nil: network sources are skipped); if that fails
// the network sources are skipped. A present but broken source stops the
// search with its error: the operator meant that seed to be used.
func Discover(ctx context.Context, sources []Source, perSource time.Duration, networkUp func(context.Context) error, log func(string, ...any)) (*Seed, error) {
	if log == nil {
		log = func(string, ...any) {}
	}
	netState := 0 // 0 not tried, 1 up, -1 unavailable
	for _, s := range sources {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("datasource discovery: %w", err)
		}
		if ns, ok := s.(NetworkSource); ok && ns.NeedsNetwork() {
			if netState == 0 {
				netState = -1
				if networkUp != nil {
					if err := networkUp(ctx); err != nil {
						log("datasource: network for metadata services: %v", err)
					} else {
						netState = 1
					}
				}
			}
			if netState < 0 {
				log("datasource: %s: skipped, no network", s.Name())
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, perSource)
		seed, err := s.Fetch(sctx)
		cancel()
		switch {
		case err == nil:
			if seed.Source == "" {
				seed.Source = s.Name()
			}
			return seed, nil
		case errors.Is(err, ErrNotFound):
			log("datasource: %s: not found", s.Name())
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			log("datasource: %s: timed out after %v", s.Name(), perSource)
		default:
			return nil, err
		}
	}
	return nil, ErrNotFound
}

// parseMetaYAML reads NoCloud-style meta-data (YAML or JSON) into a map.
func parseMetaYAML(doc string, data []byte) (map[string]any, error) {
	if len(data) > MaxDocument {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d byte limit", doc, len(data), MaxDocument)
	}
	m := map[string]any{}
	if len(strings.TrimSpace(string(data))) == 0 {
		return m, nil
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// metaString reads a scalar from meta-data, trying keys in order.
func metaString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return fmt.Sprint(v)
		}
	}
	return ""
}

// networkFormat tells v1 from v2 by the version key of a network-config.
func networkFormat(doc string, data []byte) (string, error) {
	m, err := parseMetaYAML(doc, data)
	if err != nil {
		return "", err
	}
	if n, ok := m["network"].(map[string]any); ok {
		m = n
	}
	switch fmt.Sprint(m["version"]) {
	case "1":
		return "v1", nil
	case "2":
		return "v2", nil
	}
	return "", fmt.Errorf("%s: version: want 1 or 2, got %v", doc, m["version"])
}

// fillFromMeta sets InstanceID and Hostname from NoCloud-style meta-data.
func (s *Seed) fillFromMeta() {
	s.InstanceID = metaString(s.MetaData, "instance-id", "instance_id", "uuid")
	s.Hostname = metaString(s.MetaData, "local-hostname", "local_hostname", "hostname")
}

func marshalYAML(v any) ([]byte, error) { return yaml.Marshal(v) }
