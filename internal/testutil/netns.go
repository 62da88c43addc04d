//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// netnsEnv names the namespace a re-run test binary runs in.
const netnsEnv = "MICRO_TEST_NETNS"

// netnsReason says why tests cannot run in a namespace of their own ("" when they can,
// or already do).
var netnsReason string

// MainInNetns is the TestMain of packages whose tests send multicast (mDNS), which must
// never leave the machine: outside a namespace it creates a network namespace holding
// a loopback interface with multicast on and a bridge without ports, mdns0
// (10.253.0.1/24, fe80::1), standing for a LAN; it runs the test binary again inside it
// with the same arguments, removes the namespace and exits with the binary's status.
// Inside, it runs the tests with goleak.VerifyTestMain. Without root or the ip command
// (iproute2), the tests run here and NeedNetns skips them (fails them under
// MICRO_TEST_REQUIRE=1).
func MainInNetns(m *testing.M) {
	if os.Getenv(netnsEnv) != "" {
		goleak.VerifyTestMain(m)
		return
	}
	ip, err := exec.LookPath("ip")
	switch {
	case os.Geteuid() != 0:
		netnsReason = "needs root to create a network namespace (the tests multicast and must not do it on this machine's network)"
	case err != nil:
		netnsReason = "needs the ip command (Debian package iproute2) to create a network namespace"
	}
	if netnsReason != "" {
		goleak.VerifyTestMain(m)
		return
	}
	removeStaleNetns(ip)
	name := fmt.Sprintf("micro-test-%d", os.Getpid())
	if err := setupNetns(ip, name); err != nil {
		_ = exec.Command(ip, "netns", "del", name).Run()
		netnsReason = err.Error()
		goleak.VerifyTestMain(m)
		return
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", name, os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	err = cmd.Run()
	_ = exec.Command(ip, "netns", "del", name).Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if code < 0 {
			code = 1
		}
	case err != nil:
		fmt.Fprintln(os.Stderr, "testutil: running the tests in a network namespace:", err)
		code = 1
	}
	os.Exit(code)
}

func setupNetns(ip, name string) error {
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "link", "set", "lo", "multicast", "on"},
		// a LAN of one host: a bridge without ports, with an IPv4 and an IPv6 address
		{"-n", name, "link", "add", "mdns0", "type", "bridge"},
		{"-n", name, "link", "set", "mdns0", "up"},
		{"-n", name, "addr", "add", "10.253.0.1/24", "dev", "mdns0"},
		{"-n", name, "addr", "add", "fe80::1/64", "dev", "mdns0", "nodad"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("cannot create a network namespace (ip %s: %v: %s)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// removeStaleNetns deletes namespaces left by test binaries that were killed.
func removeStaleNetns(ip string) {
	out, err := exec.Command(ip, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "micro-test-") {
			continue
		}
		pidText, _, _ := strings.Cut(strings.TrimPrefix(f[0], "micro-test-"), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = exec.Command(ip, "netns", "del", f[0]).Run()
		}
	}
}

// InNetns reports whether the tests run in a namespace made by MainInNetns.
func InNetns() bool { return os.Getenv(netnsEnv) != "" }

// NeedNetns skips the test (or fails it under MICRO_TEST_REQUIRE=1) unless it runs in a
// namespace made by MainInNetns.
func NeedNetns(t testing.TB) {
	t.Helper()
	if InNetns() {
		return
	}
	reason := netnsReason
	if reason == "" {
		reason = "the package's TestMain is not testutil.MainInNetns"
	}
	SkipOrFail(t, "multicast test skipped: %s", reason)
}

// Host is a network namespace made by LinkedHosts: a host on a LAN.
type Host struct {
	// Netns names the namespace: run a command in it with Command.
	Netns string
	// Addr is the host's IPv4 address on the LAN.
	Addr string
}

// Command returns a command that runs name in the host's namespace.
func (h Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// LinkedHosts makes n network namespaces, each with a veth interface (eth0, with
// multicast, 10.254.0.<i+1>/24) on a bridge "lanbr" in the current namespace (which
// takes 10.254.0.254/24): a LAN of n+1 hosts. It must run inside a namespace of
// MainInNetns; the namespaces are removed when the test ends.
func LinkedHosts(t testing.TB, n int) []Host {
	t.Helper()
	NeedNetns(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "lanbr").Run() })
	run("link", "add", "lanbr", "type", "bridge")
	run("link", "set", "lanbr", "up")
	run("addr", "add", "10.254.0.254/24", "dev", "lanbr")
	run("addr", "add", "fe80::fe/64", "dev", "lanbr", "nodad")
	hosts := make([]Host, n)
	for i := range hosts {
		h := Host{Netns: fmt.Sprintf("micro-test-%d-h%d", os.Getpid(), i), Addr: fmt.Sprintf("10.254.0.%d", i+1)}
		hosts[i] = h
		veth := fmt.Sprintf("lanv%d", i)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", h.Netns).Run() })
		run("netns", "add", h.Netns)
		run("-n", h.Netns, "link", "set", "lo", "up")
		run("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Netns)
		run("link", "set", veth, "master", "lanbr")
		run("link", "set", veth, "up")
		run("-n", h.Netns, "addr", "add", h.Addr+"/24", "dev", "eth0")
		run("-n", h.Netns, "addr", "add", fmt.Sprintf("fe80::%d/64", i+1), "dev", "eth0", "nodad")
		run("-n", h.Netns, "link", "set", "eth0", "multicast", "on", "up")
	}
	return hosts
}
