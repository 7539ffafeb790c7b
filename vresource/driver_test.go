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

	"golang.org/x/sys/unix"
)

// A driver runs a script of table commands, one a line, and answers one
// line each (dump: several, ending in "end").  testdata/interop.c speaks
// the same protocol over the real table.c, so one script can run on
// either side and the answers compared.
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
//	derive AID VKEY N      deriveKey for any AID and attempt N
//	lock                   "locked" once it holds the writer lock
//	unlock                 "unlocked" once it has let it go
//	die-inserting TYPE VIRT SYS
//	die-removing TYPE SYS
//	die-rebuilding TYPE    no answer: a writer killed inside a write
//
// Between lock and unlock only commands that don't write may run.  The
// die commands kill the process that runs them, so only a driver process
// may (helperCommand).  Other failures answer "error: " and the error
// (C: "error ERRNO").

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
		d := tb.idx[rt].desc
		return fmt.Sprintf("%d %d %d %d", tb.Live(rt), d.TombsByVirt, d.TombsBySys, atomic.LoadUint32(&d.Rebuilds))
	case "dump":
		// Under the writer lock, as vrid_each walks.
		if err := tb.lockWriter(); err != nil {
			return answer("", err)
		}
		var b strings.Builder
		for _, e := range tb.idx[rt].list() {
			fmt.Fprintf(&b, "%d %d\n", e.Virt, e.Sys)
		}
		tb.unlockWriter()
		return b.String() + "end"
	case "derive":
		return strconv.Itoa(int(deriveKey(AID(arg(1)), int32(arg(2)), uint32(arg(3)))))
	case "lock":
		return answer("locked", tb.lockWriter())
	case "unlock":
		tb.unlockWriter()
		return "unlocked"
	case "die-inserting", "die-removing", "die-rebuilding":
		return answer("", dieWriting(tb, f[0], rt, id, int32(arg(3))))
	}
	return "unknown command " + f[0]
}

// dieWriting is a writer that SIGKILL stops inside a write, with the lock
// held and the table marked: halfway through insertLocked (virt -> sys is
// in by_virt only), removeLocked (sys's entry is gone from by_sys only),
// or rebuildLocked (by_virt is rebuilt, by_sys not yet).  It stops at the
// steps die_writing of testdata/interop.c stops at, so that both leave
// the same bytes.  It returns only if the lock fails.
func dieWriting(tb *Tables, how string, rt ResourceType, a, b int32) error {
	ix := &tb.idx[rt]
	return tb.withWriter(rt, func() error {
		switch how {
		case "die-inserting":
			ix.putLocked(ix.byVirt, &ix.desc.TombsByVirt, enc(a), b)
		case "die-removing":
			if _, found := ix.findLocked(ix.bySys, a); found {
				ix.delLocked(ix.bySys, &ix.desc.TombsBySys, a)
			}
		default:
			ix.beginRebuild()
			ix.rebuildIndexLocked(ix.byVirt, &ix.desc.TombsByVirt)
		}
		// SIGKILL to its own process ends it before kill returns.
		return unix.Kill(os.Getpid(), unix.SIGKILL)
	})
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
