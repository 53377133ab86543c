package datasource

import (
	"context"
	"fmt"
)

// BootMedium reads a seed baked onto the boot ISO under /kiln/seed/
// (user-data, meta-data, network-config, as NoCloud). Label is the
// boot medium's volume ID (kiln.label).
type BootMedium struct {
	Volumes Volumes
	Label   string
}

func (BootMedium) Name() string { return "bootmedium" }

func (b BootMedium) Fetch(ctx context.Context) (*Seed, error) {
	if b.Label == "" {
		return nil, ErrNotFound
	}
	vols, err := b.Volumes.List()
	if err != nil {
		return nil, fmt.Errorf("bootmedium: %w", err)
	}
	for _, v := range vols {
		if v.FSType != "iso9660" || v.Label != b.Label {
			continue
		}
		dir, release, err := b.Volumes.Mount(v)
		if err != nil {
			return nil, fmt.Errorf("bootmedium:%s: %w", v.Device, err)
		}
		defer release()
		src := "bootmedium:" + v.Device
		if m, err := readSeedFile(dir, "kiln/seed/meta-data", MaxDocument); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		} else if m == nil {
			if u, _ := readSeedFile(dir, "kiln/seed/user-data", MaxUserData); u == nil {
				return nil, ErrNotFound
			}
		}
		return readNoCloudDir(src, func(name string, limit int64) ([]byte, error) {
			b, err := readSeedFile(dir, "kiln/seed/"+name, limit)
			if name == "meta-data" && b == nil && err == nil {
				b = []byte{} // optional on the boot medium
			}
			return b, err
		})
	}
	return nil, ErrNotFound
}
