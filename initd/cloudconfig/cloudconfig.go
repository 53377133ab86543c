// Package cloudconfig parses user-data (#cloud-config YAML, our machine
// config, multipart MIME, gzip) into the few settings an appliance honours,
// and writes write_files entries under a root directory.
package cloudconfig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// Limits on hostile input.
const (
	MaxUserData = 16 << 20 // user-data after decompression
	MaxParts    = 64       // MIME parts
)

// MachineConfigPrefix starts the apiVersion of our own machine config.
const MachineConfigPrefix = "kiln.dev/"

// Config is what kiln takes from user-data.
type Config struct {
	Hostname string
	FQDN     string
	// PreferFQDN sets the kernel hostname to the FQDN (prefer_fqdn_over_hostname).
	PreferFQDN bool
	WriteFiles []WriteFile
	NTPServers []string // ntp.servers then ntp.pools
	NTPEnabled bool     // false only when ntp.enabled is false
	// MachineConfig is our machine config as raw YAML: the whole user-data
	// when it is one, or the value of the "kiln:" key of a cloud-config.
	MachineConfig []byte
	Ignored       []string // keys and parts not honoured, sorted
}

// WriteFile is one write_files entry, decoded.
type WriteFile struct {
	Index   int // position in write_files, for error messages
	Path    string
	Content []byte
	Perm    uint32 // 0644 when not given
	UID     int
	GID     int
	Append  bool
	Defer   bool
}

// Parse decodes user-data. Empty user-data gives an empty Config.
func Parse(data []byte) (*Config, error) {
	c := &Config{NTPEnabled: true}
	if err := c.parse(data, 0); err != nil {
		return nil, err
	}
	sort.Strings(c.Ignored)
	c.Ignored = dedup(c.Ignored)
	return c, nil
}

func (c *Config) parse(data []byte, depth int) error {
	if depth > 3 {
		return fmt.Errorf("user-data nested more than 3 levels deep")
	}
	if len(data) > MaxUserData {
		return fmt.Errorf("user-data: %d bytes exceeds the %d byte limit", len(data), MaxUserData)
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		d, err := gunzip(data)
		if err != nil {
			return fmt.Errorf("user-data: gzip: %v", err)
		}
		return c.parse(d, depth+1)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil
	case hasPrefixFold(trimmed, "content-type:") || hasPrefixFold(trimmed, "mime-version:"):
		return c.parseMultipart(data, depth)
	case bytes.HasPrefix(trimmed, []byte("#cloud-config")):
		return c.parseCloudConfig(data)
	case isMachineConfig(data):
		c.MachineConfig = append([]byte(nil), data...)
		return nil
	case bytes.HasPrefix(trimmed, []byte("#!")):
		c.Ignored = append(c.Ignored, "user-data script")
		return nil
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	if len(first) > 40 {
		first = first[:40]
	}
	return fmt.Errorf("user-data: unrecognised format (starts %q): want #cloud-config, a kiln machine config (apiVersion: %s...), MIME multipart or gzip", first, MachineConfigPrefix)
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// isMachineConfig reports whether the first YAML document has a top-level
// apiVersion in our group.
func isMachineConfig(data []byte) bool {
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		l := s.Text()
		if l == "---" && !strings.HasPrefix(l, " ") {
			continue
		}
		if v, ok := strings.CutPrefix(l, "apiVersion:"); ok {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			return strings.HasPrefix(v, MachineConfigPrefix)
		}
		if strings.HasPrefix(l, "...") {
			return false
		}
	}
	return false
}

func gunzip(data []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, MaxUserData+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxUserData {
		return nil, fmt.Errorf("decompresses to more than %d bytes", MaxUserData)
	}
	return out, nil
}

// honoured are the cloud-config keys kiln acts on.
var honoured = map[string]bool{
	"hostname": true, "fqdn": true, "prefer_fqdn_over_hostname": true, "write_files": true,
	"ntp": true, "kiln": true,
	// These describe what kiln does anyway.
	"manage_etc_hosts": true, "preserve_hostname": true,
}

// decodeYAML decodes with yaml.v2 directly rather than through JSON, so that
// !!binary values (cloud-init's docs use them for gzip content) keep their bytes.
func decodeYAML(doc string, data []byte) (map[string]any, error) {
	var raw any
	if err := yamlv2.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	v, err := plain(raw, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a mapping at the top level, got %s", doc, typeName(v))
	}
	return m, nil
}

// plain converts yaml.v2 values to map[string]any / []any / string /
// json.Number / bool / nil.
func plain(v any, depth int) (any, error) {
	if depth > 100 {
		return nil, fmt.Errorf("nested more than 100 levels deep")
	}
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = p
		}
		return m, nil
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = p
		}
		return l, nil
	case int, int64, uint64:
		return json.Number(fmt.Sprint(t)), nil
	case float64:
		return json.Number(strconv.FormatFloat(t, 'g', -1, 64)), nil
	case string, bool, nil:
		return t, nil
	}
	return fmt.Sprint(v), nil
}

func (c *Config) parseCloudConfig(data []byte) error {
	m, err := decodeYAML("cloud-config", data)
	if err != nil {
		return err
	}
	o := obj{m: m}
	for _, k := range o.keys() {
		if !honoured[k] {
			c.Ignored = append(c.Ignored, k)
		}
	}
	if v, ok := m["hostname"]; ok && v != nil {
		if c.Hostname, err = o.str("hostname"); err != nil {
			return err
		}
		if err := CheckHostname(c.Hostname); err != nil {
			return fmt.Errorf("hostname: %v", err)
		}
	}
	if v, ok := m["fqdn"]; ok && v != nil {
		if c.FQDN, err = o.str("fqdn"); err != nil {
			return err
		}
		if err := CheckHostname(c.FQDN); err != nil {
			return fmt.Errorf("fqdn: %v", err)
		}
	}
	if c.PreferFQDN, err = o.bool("prefer_fqdn_over_hostname"); err != nil {
		return err
	}
	if _, ok := m["ntp"]; ok {
		ntp, err := o.obj("ntp")
		if err != nil {
			return err
		}
		if _, ok := ntp.m["enabled"]; ok {
			if c.NTPEnabled, err = ntp.bool("enabled"); err != nil {
				return err
			}
		}
		for _, k := range []string{"servers", "pools"} {
			l, err := ntp.strList(k)
			if err != nil {
				return err
			}
			for i, s := range l {
				if err := CheckHostname(s); err != nil {
					return fmt.Errorf("%s[%d]: %q: %v", ntp.field(k), i, s, err)
				}
			}
			c.NTPServers = append(c.NTPServers, l...)
		}
		for _, k := range ntp.keys() {
			if k != "enabled" && k != "servers" && k != "pools" {
				c.Ignored = append(c.Ignored, "ntp."+k)
			}
		}
	}
	if v, ok := m["kiln"]; ok && v != nil {
		if _, isMap := v.(map[string]any); !isMap {
			return fmt.Errorf("kiln: want a mapping (the machine config), got %s", typeName(v))
		}
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("kiln: %v", err)
		}
		if c.MachineConfig, err = yaml.JSONToYAML(j); err != nil {
			return fmt.Errorf("kiln: %v", err)
		}
	}
	files, err := o.list("write_files")
	if err != nil {
		return err
	}
	for i, fv := range files {
		f, err := asObj(fmt.Sprintf("write_files[%d]", i), fv)
		if err != nil {
			return err
		}
		wf, err := parseWriteFile(f, i)
		if err != nil {
			return err
		}
		c.WriteFiles = append(c.WriteFiles, wf)
	}
	return nil
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
