// Package seed writes the small disks a hypervisor attaches to hand a node
// its configuration: a NoCloud CIDATA image or an OpenStack config drive.
package seed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/iso9660"
)

// Kind of seed image.
const (
	NoCloud     = "nocloud"
	ConfigDrive = "configdrive"
)

// Input is what goes into a seed.
type Input struct {
	UserData      []byte // machine config or #cloud-config
	MetaData      []byte // NoCloud meta-data YAML; generated when empty
	NetworkConfig []byte // network-config (v1/v2 YAML) or, for config drives, network_data.json
	Hostname      string
	InstanceID    string // generated from the content when empty
}

// FromDir reads user-data, meta-data and network-config from a directory
// (the NoCloud file names).
func FromDir(dir string) (Input, error) {
	var in Input
	found := false
	for name, dst := range map[string]*[]byte{"user-data": &in.UserData, "meta-data": &in.MetaData, "network-config": &in.NetworkConfig} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			*dst = b
			found = true
		} else if !os.IsNotExist(err) {
			return in, fmt.Errorf("seed %s: %w", dir, err)
		}
	}
	if !found {
		return in, fmt.Errorf("seed %s: none of user-data, meta-data, network-config is there", dir)
	}
	return in, nil
}

func (in Input) instanceID() string {
	if in.InstanceID != "" {
		return in.InstanceID
	}
	h := sha256.New()
	h.Write(in.UserData)
	h.Write(in.MetaData)
	h.Write(in.NetworkConfig)
	h.Write([]byte(in.Hostname))
	return "kiln-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Tree returns the files of a seed of the given kind.
func Tree(kind string, in Input) (*fstree.Tree, string, error) {
	t := fstree.New()
	switch kind {
	case NoCloud:
		meta := in.MetaData
		if len(meta) == 0 {
			var b bytes.Buffer
			fmt.Fprintf(&b, "instance-id: %s\n", in.instanceID())
			if in.Hostname != "" {
				fmt.Fprintf(&b, "local-hostname: %s\n", in.Hostname)
			}
			meta = b.Bytes()
		}
		files := map[string][]byte{"user-data": in.UserData, "meta-data": meta}
		if len(in.NetworkConfig) > 0 {
			files["network-config"] = in.NetworkConfig
		}
		if files["user-data"] == nil {
			files["user-data"] = []byte{}
		}
		for _, n := range sortedKeys(files) {
			if err := t.AddFile(n, 0o644, files[n]); err != nil {
				return nil, "", err
			}
		}
		return t, "CIDATA", nil
	case ConfigDrive:
		md := map[string]any{"uuid": in.instanceID()}
		if in.Hostname != "" {
			md["hostname"] = in.Hostname
			md["name"] = strings.Split(in.Hostname, ".")[0]
		}
		mdj, _ := json.MarshalIndent(md, "", "  ")
		files := map[string][]byte{"openstack/latest/meta_data.json": append(mdj, '\n')}
		if len(in.UserData) > 0 {
			files["openstack/latest/user_data"] = in.UserData
		}
		if len(in.NetworkConfig) > 0 {
			if !json.Valid(in.NetworkConfig) {
				return nil, "", fmt.Errorf("config drive: network_data.json must be JSON (OpenStack format)")
			}
			files["openstack/latest/network_data.json"] = in.NetworkConfig
		}
		for _, n := range sortedKeys(files) {
			if err := t.AddFile(n, 0o644, files[n]); err != nil {
				return nil, "", err
			}
		}
		return t, "config-2", nil
	}
	return nil, "", fmt.Errorf("unknown seed kind %q (want %s or %s)", kind, NoCloud, ConfigDrive)
}

// WriteISO writes a seed as an ISO9660 image at path (temp file + rename).
func WriteISO(path, kind string, in Input, epoch int64) error {
	t, label, err := Tree(kind, in)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := iso9660.Write(tmp, t, iso9660.Options{VolumeID: label, ModTime: epoch, AllowLowerCaseVolumeID: true})
	if err != nil {
		tmp.Close()
		return fmt.Errorf("seed image: %w", err)
	}
	if err := tmp.Truncate(n); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func sortedKeys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
