package datasource

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// GuestInfo reads VMware guestinfo variables (guestinfo.userdata,
// guestinfo.metadata, guestinfo.vendordata and their .encoding) over the
// backdoor RPC channel. It only talks to the backdoor when DMI says VMware:
// the I/O port instruction faults anywhere else.
type GuestInfo struct {
	DMIDir string // default /sys/class/dmi/id
	// RPC sends one RPCI command and returns the reply; nil uses the backdoor.
	RPC func(cmd string) (string, error)
}

func (GuestInfo) Name() string { return "vmware" }

func (g GuestInfo) Fetch(ctx context.Context) (*Seed, error) {
	rpc := g.RPC
	if rpc == nil {
		if !isVMware(g.DMIDir) || !backdoorAvailable {
			return nil, ErrNotFound
		}
		rpc = func(cmd string) (string, error) { return rpciCall(backdoor, cmd) }
	}
	get := func(key string) (string, bool) {
		r, err := rpc("info-get " + key)
		if err != nil || !strings.HasPrefix(r, "1 ") {
			return "", false
		}
		return r[2:], true
	}
	if _, ok := get("guestinfo.userdata"); !ok {
		if _, ok := get("guestinfo.metadata"); !ok {
			return nil, ErrNotFound
		}
	}
	s := &Seed{Source: "vmware:guestinfo", MetaData: map[string]any{}}
	if err := applyGuestInfo(s, get); err != nil {
		return nil, fmt.Errorf("vmware:guestinfo: %v", err)
	}
	return s, nil
}

func isVMware(dmiDir string) bool {
	if dmiDir == "" {
		dmiDir = "/sys/class/dmi/id"
	}
	for _, f := range []string{"sys_vendor", "product_name"} {
		b, _ := os.ReadFile(filepath.Join(dmiDir, f))
		if strings.Contains(strings.ToLower(string(b)), "vmware") {
			return true
		}
	}
	return false
}

// applyGuestInfo fills a seed from guestinfo-style keys, shared with OVF.
func applyGuestInfo(s *Seed, get func(string) (string, bool)) error {
	decode := func(key string, limit int) ([]byte, error) {
		v, ok := get(key)
		if !ok || v == "" || v == "---" { // "---" is how vSphere clears a key
			return nil, nil
		}
		enc, _ := get(key + ".encoding")
		b, err := decodeGuestInfo(v, enc, limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		return b, nil
	}
	var err error
	if ud, err := decode("guestinfo.userdata", MaxUserData); err != nil {
		return err
	} else if ud != nil {
		s.UserData = ud
	}
	if s.VendorData, err = decode("guestinfo.vendordata", MaxUserData); err != nil {
		return err
	}
	md, err := decode("guestinfo.metadata", MaxDocument)
	if err != nil {
		return err
	}
	if md == nil {
		return nil
	}
	m, err := parseMetaYAML("guestinfo.metadata", md)
	if err != nil {
		return err
	}
	for k, v := range m {
		s.MetaData[k] = v
	}
	if id := metaString(m, "instance-id"); id != "" {
		s.InstanceID = id
	}
	if h := metaString(m, "local-hostname", "hostname"); h != "" {
		s.Hostname = h
	}
	switch n := m["network"].(type) {
	case nil:
	case string:
		enc, _ := m["network.encoding"].(string)
		if s.NetworkConfig, err = decodeGuestInfo(n, enc, MaxDocument); err != nil {
			return fmt.Errorf("guestinfo.metadata: network: %v", err)
		}
	case map[string]any:
		if s.NetworkConfig, err = marshalYAML(map[string]any{"network": n}); err != nil {
			return fmt.Errorf("guestinfo.metadata: network: %v", err)
		}
	default:
		return fmt.Errorf("guestinfo.metadata: network: want a mapping or an encoded string")
	}
	if s.NetworkConfig != nil {
		if s.NetworkFormat, err = networkFormat("guestinfo.metadata: network", s.NetworkConfig); err != nil {
			return err
		}
	}
	return nil
}

// decodeGuestInfo handles the .encoding values cloud-init's VMware source knows.
func decodeGuestInfo(v, enc string, limit int) ([]byte, error) {
	switch strings.ToLower(enc) {
	case "":
		return []byte(v), nil
	case "base64", "b64":
		return decodeB64(v)
	case "gzip+base64", "gz+b64", "gz+base64", "gzip+b64":
		b, err := decodeB64(v)
		if err != nil {
			return nil, err
		}
		return gunzipLimit(b, limit)
	}
	return nil, fmt.Errorf("encoding %q not supported (base64, gzip+base64)", enc)
}

func decodeB64(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
	if err != nil {
		return nil, fmt.Errorf("bad base64: %v", err)
	}
	return b, nil
}

func gunzipLimit(b []byte, limit int) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v", err)
	}
	if len(out) > limit {
		return nil, errors.New("gzip: decompresses to more than the limit")
	}
	return out, nil
}
