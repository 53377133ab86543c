// Command pause holds a pod's namespaces open: it sleeps until SIGINT or
// SIGTERM and, when it runs as PID 1 of a PID namespace, reaps the orphans
// the kernel hands it so they do not linger as zombies.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at link time (-X main.version=...).
var version = "unknown"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-v", "--version", "-version":
			fmt.Println("pause", version)
			return
		default:
			fmt.Fprintf(os.Stderr, "usage: pause [-v]\n")
			os.Exit(2)
		}
	}
	pid1 := os.Getpid() == 1
	if !pid1 {
		fmt.Fprintln(os.Stderr, "pause: not PID 1, orphans will not be reaped here")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			if pid1 {
				reap()
			}
		default:
			fmt.Fprintf(os.Stderr, "pause: shutting down, got %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every exited child; signals coalesce, so one SIGCHLD may
// stand for several exits.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
