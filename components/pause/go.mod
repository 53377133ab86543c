module github.com/kilnproject/kiln/components/pause

go 1.26.0

tool github.com/kilnproject/kiln/components/pause
