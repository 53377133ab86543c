package datasource

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Cmdline reads a seed from the kernel command line:
//
//	kiln.config=base64:DATA          user-data inline
//	kiln.config=http://HOST/PATH     user-data fetched once the network is up
//	ds=nocloud;s=file:///DIR/        NoCloud files in a local directory
//	ds=nocloud-net;s=http://HOST/P/  NoCloud files over HTTP (also seedfrom=)
//
// ds=nocloud without s= only names the source; the CIDATA volume is used.
type Cmdline struct {
	Args   map[string]string
	Client *http.Client
}

func (Cmdline) Name() string { return "cmdline" }

func (c Cmdline) NeedsNetwork() bool {
	if v := c.Args["kiln.config"]; strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
		return true
	}
	_, seed, _ := c.nocloud()
	return strings.HasPrefix(seed, "http://") || strings.HasPrefix(seed, "https://")
}

// nocloud splits ds=nocloud[-net];k=v;... into the seed URL and the h=/i= hints.
func (c Cmdline) nocloud() (ok bool, seed string, hints map[string]string) {
	ds, present := c.Args["ds"]
	if !present {
		return false, "", nil
	}
	parts := strings.Split(ds, ";")
	if parts[0] != "nocloud" && parts[0] != "nocloud-net" {
		return false, "", nil
	}
	hints = map[string]string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "s", "seedfrom":
			seed = v
		case "h", "local-hostname":
			hints["local-hostname"] = v
		case "i", "instance-id":
			hints["instance-id"] = v
		}
	}
	return true, seed, hints
}

func (c Cmdline) Fetch(ctx context.Context) (*Seed, error) {
	client := c.Client
	if client == nil {
		client = NewHTTPClient()
	}
	if v, ok := c.Args["kiln.config"]; ok {
		switch {
		case strings.HasPrefix(v, "base64:"):
			b, err := decodeAnyBase64(strings.TrimPrefix(v, "base64:"))
			if err != nil {
				return nil, fmt.Errorf("cmdline: kiln.config: %v", err)
			}
			return &Seed{Source: "cmdline", UserData: b}, nil
		case strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://"):
			b, err := httpGet(ctx, client, http.MethodGet, v, nil, MaxUserData)
			if err != nil {
				return nil, fmt.Errorf("cmdline: kiln.config: %w", err)
			}
			if b == nil {
				return nil, fmt.Errorf("cmdline: kiln.config: %s: HTTP 404", v)
			}
			return &Seed{Source: "cmdline:" + v, UserData: b}, nil
		default:
			return nil, fmt.Errorf("cmdline: kiln.config: %q: want base64:DATA or an http(s) URL", trunc(v))
		}
	}
	ok, seed, hints := c.nocloud()
	if !ok || seed == "" {
		return nil, ErrNotFound
	}
	u, err := url.Parse(seed)
	if err != nil {
		return nil, fmt.Errorf("cmdline: ds: seed %q: %v", trunc(seed), err)
	}
	var read reader
	var src string
	switch u.Scheme {
	case "file":
		src = "nocloud:" + u.Path
		read = dirReader(u.Path)
	case "http", "https":
		src = "nocloud-net:" + seed
		base := seed
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		read = func(name string, limit int64) ([]byte, error) {
			return httpGet(ctx, client, http.MethodGet, base+name, nil, limit)
		}
	default:
		return nil, fmt.Errorf("cmdline: ds: seed %q: want file:// or http(s)://", trunc(seed))
	}
	s, err := readNoCloudDir(src, read)
	if err != nil {
		return nil, err
	}
	for k, v := range hints {
		if _, set := s.MetaData[k]; !set {
			s.MetaData[k] = v
		}
	}
	s.fillFromMeta()
	return s, nil
}

func decodeAnyBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("bad base64")
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
