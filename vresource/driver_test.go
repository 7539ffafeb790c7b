package vresource

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// A driver runs a script of table commands, one a line, and answers one
// line each (dump: several, ending in "end").  testdata/driver.c speaks
// the protocol as a process of a chain, through the engine as the layer
// builds it; runLine speaks most of it through a Tables, so that one
// script can run in a chain's process, a Go process or a goroutine.
//
//	bind TYPE SYS          VIRT, or "full", or "invalid"
//	lookup TYPE VIRT       SYS, or "absent"
//	reverse TYPE SYS       VIRT, or "absent"
//	remove-sys TYPE SYS    "ok" or "absent"
//	remove-virt TYPE VIRT  "ok" or "absent"
//	bindkey VKEY ATTEMPT   "SKEY created" or "SKEY found", or "full", or "invalid"
//	live TYPE              the entry count
//	counts TYPE            "LIVE TOMBS_BY_VIRT TOMBS_BY_SYS REBUILDS"
//	dump TYPE              "VIRT SYS" per entry in slot order, then "end"
//
// Only the C driver knows derive, lock, unlock and the die commands,
// which kill a writer inside a write (see testdata/driver.c).  Other
// failures answer "error: " and the error (C: "error ERRNO").

// runLine runs one command on tb and returns its answer, without the
// final newline.
func runLine(tb *Tables, line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	arg := func(i int) int64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return n
	}
	rt, id := ResourceType(arg(1)), int32(arg(2))
	switch f[0] {
	case "bind":
		virt, err := tb.Bind(rt, id)
		return answer(strconv.Itoa(int(virt)), err)
	case "lookup", "reverse":
		find := tb.Lookup
		if f[0] == "reverse" {
			find = tb.Reverse
		}
		if v, ok := find(rt, id); ok {
			return strconv.Itoa(int(v))
		}
		return "absent"
	case "remove-sys":
		return answer("ok", tb.RemoveSys(rt, id))
	case "remove-virt":
		return answer("ok", tb.RemoveVirt(rt, id))
	case "bindkey":
		skey, created, err := tb.bindKey(int32(arg(1)), uint32(arg(2)))
		how := "found"
		if created {
			how = "created"
		}
		return answer(fmt.Sprintf("%d %s", skey, how), err)
	case "live":
		return strconv.Itoa(int(tb.Live(rt)))
	case "counts":
		d := descOf(tb, rt)
		return fmt.Sprintf("%d %d %d %d", tb.Live(rt), d.TombsByVirt, d.TombsBySys, atomic.LoadUint32(&d.Rebuilds))
	case "dump":
		list, errno := tb.eng.list(rt) // in slot order
		if errno != 0 {
			return answer("", errno)
		}
		var b strings.Builder
		for _, e := range list {
			fmt.Fprintf(&b, "%d %d\n", e.Virt, e.Sys)
		}
		return b.String() + "end"
	}
	return "unknown command " + f[0]
}

// answer is ok, or what the C driver says for the same failure.
func answer(ok string, err error) string {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, ErrFull):
		return "full"
	case errors.Is(err, ErrInvalidID):
		return "invalid"
	case errors.Is(err, ErrNotFound):
		return "absent"
	}
	return "error: " + err.Error()
}

// runScript runs a whole script in this process.
func runScript(tb *Tables, script string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
		b.WriteString(runLine(tb, line) + "\n")
	}
	return b.String()
}

// serveScript is the Go driver process: commands from in, answers to out,
// each answer written before the next command is read, as the C driver
// does (a test may wait for "locked").
func serveScript(tb *Tables, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if _, err := fmt.Fprintln(out, runLine(tb, sc.Text())); err != nil {
			return err
		}
	}
	return sc.Err()
}

const helperEnv = "VRID_TEST_HELPER"

// TestHelperProcess is not a test: it is the body of the processes the
// tests start by re-running the test binary, chosen by $VRID_TEST_HELPER.
func TestHelperProcess(t *testing.T) {
	var err error
	switch os.Getenv(helperEnv) {
	case "":
		t.Skip("only runs as a helper process")
	case "tables":
		err = helpTables(os.Getenv("VRID_TABLE"))
	case "register":
		err = helpRegister(os.Getenv("VRID_STATE"), os.Getenv("VRID_COUNT"))
	default:
		err = fmt.Errorf("unknown helper %q", os.Getenv(helperEnv))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helpTables(path string) error {
	tb, err := OpenTables(path)
	if err != nil {
		return err
	}
	defer tb.Close()
	return serveScript(tb, os.Stdin, os.Stdout)
}

// helperCommand re-runs the test binary as a helper process.
func helperCommand(helper string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + helper}, env...)...)
	return cmd
}

// driverCommand runs the C driver on the table file at path.
func driverCommand(driver, path string) *exec.Cmd {
	cmd := exec.Command(driver)
	cmd.Env = append(os.Environ(), "VRID_TABLE="+path)
	return cmd
}

// runC runs a script through the C driver on the table file at path.
func runC(t testing.TB, driver, path, script string) string {
	t.Helper()
	cmd := driverCommand(driver, path)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("C driver: %v\n%s", err, stderrOf(err))
	}
	return string(out)
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

// buildDriver builds testdata/driver.c with the engine's sources.
func buildDriver(t testing.TB) string {
	return buildC(t, "driver", "testdata/driver.c", "preload/lock.c", "preload/record.c", "preload/semadj.c", "preload/tablecheck.c")
}

// lineDiff shows the lines where two answers differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "-%s\n+%s\n", wl, gl)
		}
	}
	return b.String()
}
