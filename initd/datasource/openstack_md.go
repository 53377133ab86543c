package datasource

import (
	"context"
	"net/http"
	"strings"
)

// OpenStackMetadata reads http://169.254.169.254/openstack/latest/.
type OpenStackMetadata struct {
	BaseURL string // default http://169.254.169.254
	Client  *http.Client
}

func (OpenStackMetadata) Name() string       { return "openstack" }
func (OpenStackMetadata) NeedsNetwork() bool { return true }

func (o OpenStackMetadata) Fetch(ctx context.Context) (*Seed, error) {
	base := strings.TrimSuffix(o.BaseURL, "/")
	if base == "" {
		base = "http://169.254.169.254"
	}
	c := o.Client
	if c == nil {
		c = NewHTTPClient()
	}
	first := true
	return readOpenStack("openstack:"+base, func(name string, limit int64) ([]byte, error) {
		b, err := httpGet(ctx, c, "GET", base+"/openstack/latest/"+name, nil, limit)
		if first {
			first = false
			if err == nil && b == nil {
				return nil, ErrNotFound // no meta_data.json: not OpenStack
			}
		}
		return b, err
	})
}
