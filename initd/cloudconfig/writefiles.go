package cloudconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// parseWriteFile decodes one write_files entry; f.path is "write_files[i]".
func parseWriteFile(f obj, i int) (WriteFile, error) {
	wf := WriteFile{Index: i, Perm: 0o644}
	p, err := f.str("path")
	if err != nil {
		return wf, err
	}
	if wf.Path, err = cleanPath(p); err != nil {
		return wf, fmt.Errorf("%s: %v", f.field("path"), err)
	}
	for _, k := range f.keys() {
		switch k {
		case "path", "content", "encoding", "permissions", "owner", "append", "defer":
		default:
			return wf, fmt.Errorf("%s: not supported (path, content, encoding, permissions, owner, append, defer)", f.field(k))
		}
	}
	content, err := f.str("content")
	if err != nil {
		return wf, err
	}
	enc, err := f.str("encoding")
	if err != nil {
		return wf, err
	}
	if wf.Content, err = decodeContent(content, enc); err != nil {
		return wf, fmt.Errorf("%s: %v", f.field("content"), err)
	}
	switch v := f.m["permissions"].(type) {
	case nil:
	case json.Number:
		// An unquoted YAML 0644 arrives already converted from octal.
		n, err := strconv.ParseUint(v.String(), 10, 32)
		if err != nil || n > 0o7777 {
			return wf, fmt.Errorf("%s: %s is not a file mode", f.field("permissions"), v)
		}
		wf.Perm = uint32(n)
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0")
		n, err := strconv.ParseUint(s, 8, 32)
		if s == "" {
			n, err = 0, nil
		}
		if err != nil || n > 0o7777 {
			return wf, fmt.Errorf("%s: %q is not an octal mode", f.field("permissions"), v)
		}
		wf.Perm = uint32(n)
	default:
		return wf, fmt.Errorf("%s: want an octal string, got %s", f.field("permissions"), typeName(v))
	}
	owner, err := f.str("owner")
	if err != nil {
		return wf, err
	}
	if wf.UID, wf.GID, err = parseOwner(owner); err != nil {
		return wf, fmt.Errorf("%s: %v", f.field("owner"), err)
	}
	if wf.Append, err = f.bool("append"); err != nil {
		return wf, err
	}
	if wf.Defer, err = f.bool("defer"); err != nil {
		return wf, err
	}
	return wf, nil
}

// cleanPath wants an absolute path without ".." and returns it cleaned.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("missing")
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "", fmt.Errorf("%q contains \"..\"", p)
		}
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q contains a NUL byte", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("%q names the root directory", p)
	}
	return c, nil
}

func decodeContent(s, enc string) ([]byte, error) {
	b := []byte(s)
	var err error
	switch strings.ToLower(enc) {
	case "", "text/plain":
		return b, nil
	case "b64", "base64":
		return decodeBase64(s)
	case "gz", "gzip":
		return gunzip(b)
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		if b, err = decodeBase64(s); err != nil {
			return nil, err
		}
		return gunzip(b)
	}
	return nil, fmt.Errorf("encoding %q is not supported (b64, base64, gzip, gz+base64, gzip+base64, text/plain)", enc)
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64: %v", err)
	}
	return b, nil
}

// parseOwner accepts "root", "root:root", "UID" or "UID:GID"; kiln has no
// user database to resolve other names against.
func parseOwner(s string) (uid, gid int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	if uid, err = ownerID(u); err != nil {
		return 0, 0, err
	}
	gid = uid
	if hasGroup {
		if gid, err = ownerID(g); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

func ownerID(s string) (int, error) {
	if s == "root" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q: only numeric IDs and root are supported", s)
	}
	return int(n), nil
}

// ApplyWriteFiles writes the entries under root (non-deferred first, then
// deferred). Writes go through os.Root, so neither ".." nor a symlink in the
// tree can make them land outside root.
func (c *Config) ApplyWriteFiles(root string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, deferred := range []bool{false, true} {
		for _, wf := range c.WriteFiles {
			if wf.Defer != deferred {
				continue
			}
			if err := wf.write(r); err != nil {
				return fmt.Errorf("write_files[%d] (%s): %v", wf.Index, wf.Path, err)
			}
		}
	}
	return nil
}

func (wf WriteFile) write(r *os.Root) error {
	rel := strings.TrimPrefix(wf.Path, "/")
	if dir := path.Dir(rel); dir != "." {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if wf.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := r.OpenFile(rel, flags, fs.FileMode(wf.Perm&0o777))
	if err != nil {
		return err
	}
	if _, err := bytes.NewReader(wf.Content).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	// fd-based, so they act on the file just written, never on a swapped-in link.
	// chown before chmod: chown clears set-id bits.
	if os.Geteuid() == 0 {
		if err := f.Chown(wf.UID, wf.GID); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Chmod(fs.FileMode(wf.Perm&0o777) | modeBits(wf.Perm)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func modeBits(p uint32) fs.FileMode {
	var m fs.FileMode
	if p&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if p&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if p&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
