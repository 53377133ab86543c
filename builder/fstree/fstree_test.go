package fstree

import "testing"

func TestAddCreatesParentsAndSorts(t *testing.T) {
	tr := New()
	if err := tr.AddFile("/usr/bin/x", 0o755, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := tr.Symlink("bin", "usr/bin"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tr.Entries() {
		got = append(got, e.Path+":"+e.Kind.String())
	}
	want := []string{":dir", "bin:symlink", "usr:dir", "usr/bin:dir", "usr/bin/x:file"}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if c := tr.Children(""); len(c) != 2 || c[0].Name() != "bin" || c[1].Name() != "usr" {
		t.Fatalf("children of root: %v", c)
	}
	if c := tr.Children("usr/bin"); len(c) != 1 || c[0].Size() != 2 {
		t.Fatalf("children of usr/bin: %v", c)
	}
}

func TestFileUnderFileFails(t *testing.T) {
	tr := New()
	if err := tr.AddFile("a", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddFile("a/b", 0o644, nil); err == nil {
		t.Fatal("adding below a file succeeded")
	}
	if err := tr.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddFile("d", 0o644, nil); err == nil {
		t.Fatal("replacing a directory with a file succeeded")
	}
}
