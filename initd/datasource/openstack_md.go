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
	// Detect, when set, must report true for the service to be tried.
	Detect func() bool
}

func (OpenStackMetadata) Name() string         { return "openstack" }
func (o OpenStackMetadata) NeedsNetwork() bool { return o.Detect == nil || o.Detect() }

func (o OpenStackMetadata) Fetch(ctx context.Context) (*Seed, error) {
	if o.Detect != nil && !o.Detect() {
		return nil, ErrNotFound
	}
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
