package datasource

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// ConfigDrive reads an OpenStack config drive: a vfat or iso9660 filesystem
// labelled config-2 with openstack/latest/{meta_data.json, user_data,
// vendor_data.json, network_data.json}.
type ConfigDrive struct {
	Volumes Volumes
}

func (ConfigDrive) Name() string { return "configdrive" }

func (c ConfigDrive) Fetch(ctx context.Context) (*Seed, error) {
	vols, err := c.Volumes.List()
	if err != nil {
		return nil, fmt.Errorf("configdrive: %w", err)
	}
	for _, v := range vols {
		if !strings.EqualFold(v.Label, "config-2") {
			continue
		}
		dir, release, err := c.Volumes.Mount(v)
		if err != nil {
			return nil, fmt.Errorf("configdrive:%s: %w", v.Device, err)
		}
		defer release()
		return readOpenStack("configdrive:"+v.Device, func(name string, limit int64) ([]byte, error) {
			return readSeedFile(dir, "openstack/latest/"+name, limit)
		})
	}
	return nil, ErrNotFound
}

// readOpenStack reads the openstack/latest tree, from a drive or over HTTP.
func readOpenStack(source string, read reader) (*Seed, error) {
	s := &Seed{Source: source}
	meta, err := read("meta_data.json", MaxDocument)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if meta == nil {
		return nil, fmt.Errorf("%s: openstack/latest/meta_data.json: missing", source)
	}
	if err := json.Unmarshal(meta, &s.MetaData); err != nil {
		return nil, fmt.Errorf("%s: meta_data.json: %v", source, err)
	}
	s.InstanceID = metaString(s.MetaData, "uuid")
	s.Hostname = metaString(s.MetaData, "hostname", "name")
	if s.UserData, err = read("user_data", MaxUserData); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	vd, err := read("vendor_data.json", MaxDocument)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if vd != nil {
		if s.VendorData, err = openStackVendorData(vd); err != nil {
			return nil, fmt.Errorf("%s: vendor_data.json: %v", source, err)
		}
	}
	if s.NetworkConfig, err = read("network_data.json", MaxDocument); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.NetworkConfig != nil {
		s.NetworkFormat = "openstack"
	}
	return s, nil
}

// openStackVendorData takes the "cloud-init" member of vendor_data.json
// (a string, or a document to pass on as is), as cloud-init does.
func openStackVendorData(b []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	switch t := v.(type) {
	case string:
		return []byte(t), nil
	case map[string]any:
		if ci, ok := t["cloud-init"]; ok {
			if s, ok := ci.(string); ok {
				return []byte(s), nil
			}
			return nil, fmt.Errorf("cloud-init: want a string")
		}
	}
	return nil, nil
}
