package core_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pgBin holds Debian's PostgreSQL 15 programs.
const pgBin = "/usr/lib/postgresql/15/bin"

// PostgreSQL 15 under sequential ids, started by a root shell through
// runuser (test/programs/pg_chain.sh): every PostgreSQL program is exec'd
// after root was dropped, in a state directory only root may enter, and
// opens its table through the fd the chain inherits (VRID_TABLE_FD).
// initdb, pgbench -i and a pgbench run give exact row counts, and
// pg_ctl status, reload and stop find the postmaster by the virtual pid
// of its pid file.  The golden file holds the script's name=value lines.
func TestPostgres(t *testing.T) {
	needSetup(t)
	dir := postgresDir(t)
	script := filepath.Join(repoRoot, "test", "programs", "pg_chain.sh")
	res := runChainPrivate(t, "--ids", "sequential", "--", "/bin/sh", script, dir)
	if res.Code != 0 || res.Stderr != "" {
		t.Errorf("want exit status 0 and no stderr\n%s", res)
		for _, log := range []string{"initdb.log", "pg_ctl.log", "postgres.log", "pgbench.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, log))
			t.Logf("%s:\n%s", log, b)
		}
	}
	checkGolden(t, "postgres", res.Stdout)
}

// The command of issue 7 as it stands: the chain's root is runuser, and
// postgres, exec'd as the postgres user, is 1001.  Clients outside the
// chain see virtual pids in PostgreSQL's own views: pg_backend_pid(),
// pg_stat_activity; pg_reload_conf() signals the postmaster by its
// virtual pid from a backend.  SIGTERM to vrid run reaches runuser,
// which passes it on and then ends itself by it: the cluster shuts down
// cleanly, and the run's status is 143.
func TestPostgresRoot(t *testing.T) {
	needSetup(t)
	dir := postgresDir(t)
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	pgRun(t, ctx, "runuser", "-u", "postgres", "--", filepath.Join(pgBin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres")

	stateDir := t.TempDir()
	if err := os.Chmod(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	before := readIPC(t)
	r := startChain(t, ctx, stateDir, "run", "--ids", "sequential", "--", "runuser", "-u", "postgres", "--",
		filepath.Join(pgBin, "postgres"), "-D", data, "-k", dir, "-c", "listen_addresses=")
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	// Not pg_isready: each of its tries would start a backend, and take a pid.
	pidFile := filepath.Join(data, "postmaster.pid")
	poll(t, "postmaster.pid says ready", func() bool {
		select {
		case <-r.done:
			t.Fatalf("the chain ended before postgres was ready\n%s", r.finish(t))
		default:
		}
		b, _ := os.ReadFile(pidFile)
		lines := strings.Split(string(b), "\n")
		return len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready"
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	postmaster, _, _ := strings.Cut(string(b), "\n")
	got := "postmaster.pid=" + postmaster + "\n"
	for _, q := range []struct{ name, sql string }{
		{"backend", "select pg_backend_pid()"},
		{"backend.in_pg_stat_activity", "select count(*) from pg_stat_activity where pid = pg_backend_pid()"},
		{"checkpointer", "select pid from pg_stat_activity where backend_type = 'checkpointer'"},
		{"pg_reload_conf", "select pg_reload_conf()"},
	} {
		got += q.name + "=" + pgRun(t, ctx, filepath.Join(pgBin, "psql"), "-h", dir, "-U", "postgres", "-X", "-A", "-t", "-c", q.sql)
	}
	if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := r.finish(t)
	if res.Code != 128+int(unix.SIGTERM) {
		t.Errorf("want exit status %d: runuser ends by SIGTERM\n%s", 128+int(unix.SIGTERM), res)
	}
	// The postmaster logs to stderr.
	for _, want := range []string{"received SIGHUP, reloading configuration files", "database system is shut down"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the postmaster did not log %q\n%s", want, res)
		}
	}
	checkNoLeaks(t, stateDir, before)
	for _, line := range strings.Split(pgRun(t, ctx, filepath.Join(pgBin, "pg_controldata"), "-D", data), "\n") {
		if strings.HasPrefix(line, "Database cluster state:") {
			got += "cluster_state=" + strings.TrimSpace(strings.TrimPrefix(line, "Database cluster state:")) + "\n"
		}
	}
	checkGolden(t, "postgres_root", got)
}

// postgresDir skips a test without PostgreSQL 15 and makes a directory
// for its cluster, which the postgres user owns.  It lies outside
// t.TempDir, whose parent is 0700.
func postgresDir(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"postgres", "initdb", "pg_ctl", "pgbench", "psql", "pg_controldata"} {
		if _, err := os.Stat(filepath.Join(pgBin, name)); err != nil {
			t.Skipf("PostgreSQL 15 is not installed (scripts/install-stack.sh installs it): %v", err)
		}
	}
	needCommand(t, "runuser")
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "vrid-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pgRun runs a program outside any chain and returns its stdout; it must
// succeed.
func pgRun(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	res := runProgram(t, ctx, bounded(exec.CommandContext(ctx, args[0], args[1:]...)), args[0], nil)
	if res.Code != 0 {
		t.Fatalf("%s: want exit status 0\n%s", strings.Join(args, " "), res)
	}
	return res.Stdout
}
