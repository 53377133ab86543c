package datasource

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
)

// OVF reads the VMware/vApp OVF environment: ovf-env.xml on an iso9660
// volume (normally labelled "OVF ENV"). Its PropertySection carries either
// cloud-init OVF keys (user-data base64, instance-id, hostname) or
// guestinfo-style keys.
type OVF struct {
	Volumes Volumes
}

func (OVF) Name() string { return "ovf" }

func (o OVF) Fetch(ctx context.Context) (*Seed, error) {
	vols, err := o.Volumes.List()
	if err != nil {
		return nil, fmt.Errorf("ovf: %w", err)
	}
	// Volumes labelled OVF ENV first, then any other iso9660.
	for _, pass := range []bool{true, false} {
		for _, v := range vols {
			if v.FSType != "iso9660" || (v.Label == "OVF ENV" || v.Label == "OVF_ENV") != pass {
				continue
			}
			if strings.EqualFold(v.Label, "cidata") || strings.EqualFold(v.Label, "config-2") {
				continue
			}
			dir, release, err := o.Volumes.Mount(v)
			if err != nil {
				continue
			}
			b, err := readSeedFile(dir, "ovf-env.xml", MaxDocument)
			release()
			if err != nil {
				return nil, fmt.Errorf("ovf:%s: %w", v.Device, err)
			}
			if b == nil {
				continue
			}
			return ParseOVFEnv("ovf:"+v.Device, b)
		}
	}
	return nil, ErrNotFound
}

type ovfEnv struct {
	XMLName    xml.Name `xml:"Environment"`
	Properties []struct {
		Key   string `xml:"key,attr"`
		Value string `xml:"value,attr"`
	} `xml:"PropertySection>Property"`
}

// ParseOVFEnv turns an ovf-env.xml into a seed.
func ParseOVFEnv(source string, b []byte) (*Seed, error) {
	if len(b) > MaxDocument {
		return nil, fmt.Errorf("%s: ovf-env.xml: larger than %d bytes", source, MaxDocument)
	}
	var env ovfEnv
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(&env); err != nil {
		return nil, fmt.Errorf("%s: ovf-env.xml: %v", source, err)
	}
	props := map[string]string{}
	for _, p := range env.Properties {
		props[p.Key] = p.Value
	}
	s := &Seed{Source: source, MetaData: map[string]any{}}
	for k, v := range props {
		s.MetaData[k] = v
	}
	s.InstanceID = props["instance-id"]
	s.Hostname = props["local-hostname"]
	if s.Hostname == "" {
		s.Hostname = props["hostname"]
	}
	if ud := props["user-data"]; ud != "" {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(ud), ""))
		if err != nil {
			return nil, fmt.Errorf("%s: ovf-env.xml: property user-data: bad base64: %v", source, err)
		}
		s.UserData = b
	}
	get := func(k string) (string, bool) { v, ok := props[k]; return v, ok }
	if err := applyGuestInfo(s, get); err != nil {
		return nil, fmt.Errorf("%s: ovf-env.xml: %v", source, err)
	}
	return s, nil
}
