package cloudconfig

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestCloudConfigDocs(t *testing.T) {
	c, err := Parse(read(t, "cloud-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "node1" || c.FQDN != "node1.example.com" || c.KernelHostname() != "node1" || c.FullName() != "node1.example.com" {
		t.Errorf("names %q %q %q", c.Hostname, c.FQDN, c.KernelHostname())
	}
	if strings.Join(c.NTPServers, ",") != "ntp1.example.com,192.0.2.123,0.pool.example.org" || !c.NTPEnabled {
		t.Errorf("ntp %v", c.NTPServers)
	}
	if got := strings.Join(c.Ignored, ","); got != "ntp.ntp_client,packages,runcmd,users" {
		t.Errorf("ignored %s", got)
	}
	if !strings.Contains(string(c.MachineConfig), "apiVersion: kiln.dev/v1alpha1") || !strings.Contains(string(c.MachineConfig), "role: worker") {
		t.Errorf("machine config %q", c.MachineConfig)
	}
	if len(c.WriteFiles) != 6 {
		t.Fatalf("%d write_files", len(c.WriteFiles))
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hello\n"), 0o644)
	if err := c.ApplyWriteFiles(root); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/etc/sysconfig/selinux": "\n# This file controls the state of SELinux\n",
		"/etc/sysconfig/samba":   "# My new /etc/sysconfig/samba file\n\nSMBDOPTIONS=\"-D\"\n",
		"/usr/bin/hello":         "#!/bin/sh\necho hello world\n",
		"/etc/motd":              "hello\nappended\n",
		"/etc/late":              "late",
	} {
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	for path, mode := range map[string]os.FileMode{"/usr/bin/hello": 0o755, "/bin/arbitrary": 0o555, "/etc/late": 0o600, "/etc/sysconfig/samba": 0o644} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, %v; want %v", path, fi.Mode(), err, mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "/bin/arbitrary")); !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Errorf("!!binary content %q", b[:8])
	}
	if os.Geteuid() == 0 {
		fi, _ := os.Stat(filepath.Join(root, "etc/motd"))
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf("motd owner %d:%d", st.Uid, st.Gid)
		}
	}
}

func TestMachineConfigAlone(t *testing.T) {
	mc := read(t, "machine-config.yaml")
	for name, data := range map[string][]byte{"plain": mc, "gzip": gz(mc)} {
		c, err := Parse(data)
		if err != nil {
			t.Fatal(name, err)
		}
		if !bytes.Equal(c.MachineConfig, mc) || c.Hostname != "" {
			t.Errorf("%s: machine config %q", name, c.MachineConfig)
		}
	}
}

func TestMultipart(t *testing.T) {
	c, err := Parse(read(t, "multipart.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "second" || len(c.WriteFiles) != 2 || c.WriteFiles[1].Path != "/etc/two" {
		t.Errorf("merged %+v", c)
	}
	if strings.Join(c.Ignored, ",") != "MIME part text/x-shellscript" {
		t.Errorf("ignored %v", c.Ignored)
	}
	// The same, gzipped, as cloud-init accepts it.
	if c2, err := Parse(gz(read(t, "multipart.txt"))); err != nil || c2.Hostname != "second" {
		t.Errorf("gzip multipart: %v %+v", err, c2)
	}
}

func TestEmptyAndScript(t *testing.T) {
	if c, err := Parse(nil); err != nil || c.Hostname != "" {
		t.Error(err)
	}
	if c, err := Parse([]byte("#!/bin/sh\necho hi\n")); err != nil || c.Ignored[0] != "user-data script" {
		t.Error(err, c)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"write_files:\n- path: /a\n- path: /b\n- path: /c\n  permissions: '0x9'\n", `write_files[2].permissions: "0x9" is not an octal mode`},
		{"write_files:\n- path: /a\n  encoding: b64\n  content: '!!!notbase64'\n", "write_files[0].content: bad base64"},
		{"write_files:\n- path: /a\n  encoding: gzip\n  content: notgzip\n", "write_files[0].content"},
		{"write_files:\n- path: /a\n  encoding: rot13\n", `encoding "rot13" is not supported`},
		{"write_files:\n- path: ../../etc/passwd\n", "write_files[0].path: \"../../etc/passwd\" is not an absolute path"},
		{"write_files:\n- path: /etc/../../../x\n", "write_files[0].path: \"/etc/../../../x\" contains \"..\""},
		{"write_files:\n- path: /\n", "names the root"},
		{"write_files:\n- content: x\n", "write_files[0].path: missing"},
		{"write_files:\n- path: /a\n  owner: alice\n", `write_files[0].owner: "alice": only numeric IDs and root`},
		{"write_files:\n- path: /a\n  source: {uri: 'http://x'}\n", "write_files[0].source: not supported"},
		{"write_files:\n- path: /a\n  permissions: 99999\n", "write_files[0].permissions"},
		{"write_files: {}\n", "write_files: want a list"},
		{"hostname: 'bad_name!'\n", "hostname:"},
		{"fqdn: '-x.example'\n", "fqdn:"},
		{"ntp:\n  servers: ['a b']\n", "ntp.servers[0]"},
		{"kiln: [1]\n", "kiln: want a mapping"},
		{"- a\n- b\n", "want a mapping at the top level"},
		{"a: [\n", "cloud-config"},
	} {
		_, err := Parse([]byte("#cloud-config\n" + tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.doc, err, tc.want)
		}
	}
	if _, err := Parse([]byte("just some text")); err == nil || !strings.Contains(err.Error(), "unrecognised format") {
		t.Errorf("plain text: %v", err)
	}
}

func TestHostile(t *testing.T) {
	// gzip bomb: 17 MiB of zeros compress to a few KiB.
	bomb := gz(make([]byte, MaxUserData+1<<20))
	if _, err := Parse(bomb); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("gzip bomb: %v", err)
	}
	gzContent := "#cloud-config\nwrite_files:\n- path: /a\n  encoding: gzip\n  content: !!binary |\n    " +
		b64(bomb) + "\n"
	if _, err := Parse([]byte(gzContent)); err == nil {
		t.Error("gzip bomb in write_files accepted")
	}
	if _, err := Parse(make([]byte, MaxUserData+1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("huge: %v", err)
	}
	deep := "#cloud-config\na: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n"
	if _, err := Parse([]byte(deep)); err == nil {
		t.Error("deep YAML accepted")
	}
	laughs := "#cloud-config\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
	if _, err := Parse([]byte(laughs)); err == nil {
		t.Error("billion laughs accepted")
	}
	// MIME nesting and part count.
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=B\n\n")
	for i := 0; i < MaxParts+1; i++ {
		many.WriteString("--B\nContent-Type: text/plain\n\nx\n")
	}
	many.WriteString("--B--\n")
	if _, err := Parse([]byte(many.String())); err == nil || !strings.Contains(err.Error(), "parts") {
		t.Errorf("many parts: %v", err)
	}
}

func b64(b []byte) string {
	var s strings.Builder
	enc := []byte(base64Std(b))
	for len(enc) > 76 {
		s.Write(enc[:76])
		s.WriteString("\n    ")
		enc = enc[76:]
	}
	s.Write(enc)
	return s.String()
}

// A symlink planted in the tree must not carry a write outside root.
func TestWriteFilesStayInsideRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../"+outside, filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(root, "file"))
	for _, p := range []string{"/escape/pwned", "/rel/pwned", "/file"} {
		c, err := Parse([]byte("#cloud-config\nwrite_files:\n- path: " + p + "\n  content: pwned\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyWriteFiles(root); err == nil {
			t.Errorf("%s: write through a symlink leaving root succeeded", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files written outside root: %v", ents)
	}
}

func TestCheckHostname(t *testing.T) {
	for _, ok := range []string{"a", "node-1", "node1.example.com", "x.example.", strings.Repeat("a", 63)} {
		if err := CheckHostname(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "a..b", "a_b", "a b", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "ab", "ünï"} {
		if err := CheckHostname(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
