package network

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteResolvConfAndHosts(t *testing.T) {
	root := t.TempDir()
	if err := WriteResolvConf(root, []string{"10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.4", "10.0.0.5"}, []string{"example.com"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	want := "# written by kiln initd\nsearch example.com\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n"
	if string(b) != want {
		t.Errorf("resolv.conf = %q", b)
	}
	if err := WriteHosts(root, "node1", "node1.example.com"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(root, "etc/hosts"))
	if want := "# written by kiln initd\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tnode1.example.com node1\n"; string(b) != want {
		t.Errorf("hosts = %q", b)
	}
	if b, _ = os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "node1\n" {
		t.Errorf("hostname = %q", b)
	}
}

func TestEtcWritesStayInsideRoot(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := WriteResolvConf(root, []string{"10.0.0.1"}, nil); err == nil {
		t.Error("write through an escaping /etc symlink succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside root: %v", ents)
	}
}
