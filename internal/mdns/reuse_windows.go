//go:build windows

package mdns

import (
	"syscall"
)

// reuse lets other processes bind the mDNS port too (SO_REUSEADDR is all Windows has).
func reuse(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
