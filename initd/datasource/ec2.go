package datasource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// EC2 reads an EC2-style metadata service (/latest/meta-data/...,
// /latest/user-data). With TokenTTLHeader set it first asks for a session
// token (PUT /latest/api/token, IMDSv2 style) and sends it with every GET;
// services that refuse the PUT are read without a token.
type EC2 struct {
	Label   string // source name: "ec2", "zstack", "aliyun"
	BaseURL string // default http://169.254.169.254
	Client  *http.Client
	// TokenTTLHeader/TokenHeader: X-aws-ec2-metadata-token-ttl-seconds and
	// X-aws-ec2-metadata-token for EC2; X-aliyun-ecs-metadata-token-... for Alibaba.
	TokenTTLHeader string
	TokenHeader    string
	// Detect, when set, must report true (from DMI) for the service to be tried.
	Detect func() bool
}

// NewEC2 is AWS-style IMDSv2 at 169.254.169.254.
func NewEC2() *EC2 {
	return &EC2{Label: "ec2", TokenTTLHeader: "X-aws-ec2-metadata-token-ttl-seconds", TokenHeader: "X-aws-ec2-metadata-token"}
}

// NewZStack is ZStack's EC2-compatible service, recognised by DMI.
func NewZStack(dmiDir string) *EC2 {
	e := NewEC2()
	e.Label = "zstack"
	e.Detect = func() bool {
		return strings.HasSuffix(dmi(dmiDir, "chassis_asset_tag"), ".zstack.io") ||
			strings.Contains(strings.ToLower(dmi(dmiDir, "product_name")), "zstack")
	}
	return e
}

// NewAliyun is Alibaba Cloud ECS metadata at 100.100.100.200 in hardened (token) mode.
func NewAliyun(dmiDir string) *EC2 {
	return &EC2{
		Label: "aliyun", BaseURL: "http://100.100.100.200",
		TokenTTLHeader: "X-aliyun-ecs-metadata-token-ttl-seconds", TokenHeader: "X-aliyun-ecs-metadata-token",
		Detect: func() bool { return strings.Contains(dmi(dmiDir, "product_name"), "Alibaba Cloud") },
	}
}

func dmi(dir, name string) string {
	if dir == "" {
		dir = "/sys/class/dmi/id"
	}
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b))
}

func (e *EC2) Name() string       { return e.Label }
func (e *EC2) NeedsNetwork() bool { return e.Detect == nil || e.Detect() }

func (e *EC2) Fetch(ctx context.Context) (*Seed, error) {
	if e.Detect != nil && !e.Detect() {
		return nil, ErrNotFound
	}
	base := strings.TrimSuffix(e.BaseURL, "/")
	if base == "" {
		base = "http://169.254.169.254"
	}
	c := e.Client
	if c == nil {
		c = NewHTTPClient()
	}
	src := e.Label + ":" + base
	hdr := map[string]string{}
	if e.TokenTTLHeader != "" {
		tok, err := httpGet(ctx, c, http.MethodPut, base+"/latest/api/token", map[string]string{e.TokenTTLHeader: "21600"}, 4096)
		var se *statusError
		switch {
		case errors.As(err, &se) && (se.code == 403 || se.code == 405):
			// No token support: fall back to plain GETs.
		case err != nil:
			return nil, fmt.Errorf("%s: token: %w", src, err)
		case len(tok) > 0:
			hdr[e.TokenHeader] = strings.TrimSpace(string(tok))
		}
	}
	get := func(path string, limit int64) ([]byte, error) {
		b, err := httpGet(ctx, c, http.MethodGet, base+path, hdr, limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		return b, nil
	}
	id, err := get("/latest/meta-data/instance-id", 1024)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, ErrNotFound
	}
	s := &Seed{Source: src, InstanceID: strings.TrimSpace(string(id)), MetaData: map[string]any{"instance-id": strings.TrimSpace(string(id))}}
	for _, k := range []string{"local-hostname", "hostname"} {
		h, err := get("/latest/meta-data/"+k, 1024)
		if err != nil {
			return nil, err
		}
		if h != nil {
			s.MetaData[k] = strings.TrimSpace(string(h))
			if s.Hostname == "" {
				s.Hostname = strings.TrimSpace(string(h))
			}
		}
	}
	if s.UserData, err = get("/latest/user-data", MaxUserData); err != nil {
		return nil, err
	}
	if s.VendorData, err = get("/latest/vendor-data", MaxUserData); err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			return nil, err
		}
		s.VendorData = nil
	}
	return s, nil
}
