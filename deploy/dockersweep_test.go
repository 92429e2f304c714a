package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2ePrefix starts the Compose project and image name of every Docker
// test run; the test binary's PID follows it.
const e2ePrefix = "ringkv-e2e-"

// sweepLeftovers removes what an earlier run left behind when it could not
// clean up (its -timeout panicked, or it was killed): containers, volumes
// and networks of a Compose project ringkv-e2e-PID, and images named so,
// whose PID no longer runs. A run still going is left alone.
func sweepLeftovers(ctx context.Context, t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	label := "{{.Label \"com.docker.compose.project\"}}"
	kinds := []struct {
		list, remove []string
	}{
		{[]string{"ps", "-a", "--format", "{{.ID}} " + label}, []string{"rm", "-f", "-v"}},
		{[]string{"volume", "ls", "--format", "{{.Name}} " + label}, []string{"volume", "rm", "-f"}},
		{[]string{"network", "ls", "--format", "{{.ID}} " + label}, []string{"network", "rm"}},
		{[]string{"images", "--format", "{{.Repository}}:{{.Tag}} {{.Repository}}"}, []string{"rmi"}},
	}
	for _, k := range kinds {
		out, err := execOutput(ctx, "docker", k.list...)
		if err != nil {
			t.Logf("sweeping leftovers: docker %s: %v %s", strings.Join(k.list, " "), err, out)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			id, owner, _ := strings.Cut(line, " ")
			if !staleRun(owner) {
				continue
			}
			if out, err := execOutput(ctx, "docker", append(k.remove, id)...); err != nil {
				t.Logf("sweeping leftovers: docker %s %s: %v %s", strings.Join(k.remove, " "), id, err, out)
			} else {
				t.Logf("removed %s, left by an earlier run (%s)", id, owner)
			}
		}
	}
}

// staleRun reports whether name is ringkv-e2e-PID for a PID that no
// longer runs on this machine.
func staleRun(name string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(name), e2ePrefix)
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(rest)
	if err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// checkImageVersion runs the image's "ringkv version --json" and requires
// the commit scripts/image.sh stamped into it.
func checkImageVersion(ctx context.Context, t *testing.T, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", image, "version", "--json").Output()
	if err != nil {
		t.Fatalf("docker run %s version --json: %v", image, err)
	}
	var v struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s version --json: %v\n%s", image, err, out)
	}
	want := "unknown" // image.sh's stamp outside a git checkout
	if rev, err := execOutput(ctx, "git", "-C", repoRoot, "rev-parse", "--short=12", "HEAD"); err == nil {
		want = strings.TrimSpace(rev)
	}
	if v.Version == "" || !strings.HasPrefix(v.Commit, want) {
		t.Errorf("%s version --json = %s: want the version and commit %s, stamped by image.sh", image, out, want)
	}
}
