package main

import (
	"os/exec"

	"github.com/kilnproject/kiln/builder/profile"
)

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func parseSize(s string) (int64, error) { return profile.ParseSize(s) }
