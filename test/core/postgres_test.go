package core_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
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
	for _, name := range []string{"postgres", "initdb", "pg_ctl", "pgbench", "psql"} {
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
	// The cluster's directory is postgres's, outside the 0700 directory
	// of t.TempDir.
	dir, err := os.MkdirTemp("", "vrid-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
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
