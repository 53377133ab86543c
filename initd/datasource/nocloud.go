package datasource

import (
	"context"
	"fmt"
	"strings"
)

// NoCloud reads user-data, meta-data, vendor-data and network-config from a
// vfat or iso9660 filesystem labelled CIDATA or cidata.
type NoCloud struct {
	Volumes Volumes
}

func (NoCloud) Name() string { return "nocloud" }

func (n NoCloud) Fetch(ctx context.Context) (*Seed, error) {
	vols, err := n.Volumes.List()
	if err != nil {
		return nil, fmt.Errorf("nocloud: %w", err)
	}
	for _, v := range vols {
		if !strings.EqualFold(v.Label, "cidata") {
			continue
		}
		dir, release, err := n.Volumes.Mount(v)
		if err != nil {
			return nil, fmt.Errorf("nocloud:%s: %w", v.Device, err)
		}
		defer release()
		return readNoCloudDir("nocloud:"+v.Device, dirReader(dir))
	}
	return nil, ErrNotFound
}

// reader fetches one seed file by name: nil, nil when absent.
type reader func(name string, limit int64) ([]byte, error)

func dirReader(dir string) reader {
	return func(name string, limit int64) ([]byte, error) { return readSeedFile(dir, name, limit) }
}

// readNoCloudDir reads the NoCloud file set; meta-data is required.
func readNoCloudDir(source string, read reader) (*Seed, error) {
	s := &Seed{Source: source}
	meta, err := read("meta-data", MaxDocument)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if meta == nil {
		return nil, fmt.Errorf("%s: meta-data: missing (NoCloud needs it, even if empty)", source)
	}
	if s.MetaData, err = parseMetaYAML(source+" meta-data", meta); err != nil {
		return nil, err
	}
	s.fillFromMeta()
	if s.UserData, err = read("user-data", MaxUserData); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.VendorData, err = read("vendor-data", MaxUserData); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.NetworkConfig, err = read("network-config", MaxDocument); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(strings.TrimSpace(string(s.NetworkConfig))) == 0 {
		s.NetworkConfig = nil
	} else if s.NetworkFormat, err = networkFormat(source+" network-config", s.NetworkConfig); err != nil {
		return nil, err
	}
	return s, nil
}
