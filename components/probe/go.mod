module github.com/kilnproject/kiln/components/probe

go 1.26.0

tool github.com/kilnproject/kiln/components/probe
