package cloudconfig

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// parseMultipart handles MIME user-data as cloud-init's make-mime writes it:
// text/cloud-config parts are merged in order (later keys win, write_files
// and NTP servers accumulate); other part types are reported as ignored.
func (c *Config) parseMultipart(data []byte, depth int) error {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("user-data: MIME: %v", err)
	}
	return c.parsePart(textproto(msg.Header), msg.Body, depth, "user-data")
}

type header interface{ Get(string) string }

func textproto(h mail.Header) header { return h }

func (c *Config) parsePart(h header, body io.Reader, depth int, name string) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%s: Content-Type %q: %v", name, ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth > 3 {
			return fmt.Errorf("%s: multipart nested too deep", name)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for i := 0; ; i++ {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: part %d: %v", name, i, err)
			}
			if i >= MaxParts {
				return fmt.Errorf("%s: more than %d MIME parts", name, MaxParts)
			}
			if err := c.parsePart(p.Header, p, depth+1, fmt.Sprintf("%s part %d", name, i)); err != nil {
				return err
			}
		}
	}
	var r io.Reader = io.LimitReader(body, MaxUserData+1)
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("%s: Content-Transfer-Encoding %q not supported", name, cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if len(b) > MaxUserData {
		return fmt.Errorf("%s: more than %d bytes", name, MaxUserData)
	}
	switch mt {
	case "text/cloud-config":
		if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
			err = c.parse(b, depth+1)
		} else {
			err = c.parseCloudConfig(b)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	case "text/x-kiln-config", "application/x-kiln-config":
		c.MachineConfig = b
	case "application/gzip", "application/x-gzip":
		if err := c.parse(b, depth+1); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	default:
		c.Ignored = append(c.Ignored, "MIME part "+mt)
	}
	return nil
}

// newlineStripper drops CR and LF so base64 bodies wrapped at 76 columns decode.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
