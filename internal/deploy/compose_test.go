package deploy

import (
	"context"
	"go/version"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tutti-dev/tutti/internal/searchattr"
)

const root = "../.."

var composeFile = filepath.Join(root, "docker-compose.yml")

// Values the test supplies for the variables the compose file requires. After
// interpolation, a secret-looking setting must be empty or one of these:
// anything else was written into the file.
var requiredEnv = map[string]string{
	"POSTGRES_PASSWORD": "sentinel-postgres-password",
	"TUTTI_API_TOKEN":   "sentinel-api-token",
}

func loadProject(t *testing.T, env map[string]string, extra ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	p, err := tryLoadProject(env, extra...)
	if err != nil {
		t.Fatalf("loading %s: %v", composeFile, err)
	}
	return p
}

// tryLoadProject loads docker-compose.yml as `docker compose` would, with only
// env as the environment (no OS environment, no .env file).
func tryLoadProject(env map[string]string, extra ...cli.ProjectOptionsFn) (*types.Project, error) {
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts := append([]cli.ProjectOptionsFn{cli.WithWorkingDirectory(root), cli.WithEnv(kv)}, extra...)
	o, err := cli.NewProjectOptions([]string{composeFile}, opts...)
	if err != nil {
		return nil, err
	}
	return o.LoadProject(context.Background())
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %q: %v", name, err)
	}
	return s
}

var expectedServices = []string{
	"postgresql",
	"temporal-schema",
	"temporal",
	"temporal-setup",
	"temporal-ui",
	"tutti-migrate",
	"tutti-worker",
	"tutti-api",
}

func TestComposeServicesExist(t *testing.T) {
	p := loadProject(t, requiredEnv)
	got := p.ServiceNames()
	sort.Strings(got)
	for _, name := range expectedServices {
		if !slices.Contains(got, name) {
			t.Errorf("service %q missing (services: %v)", name, got)
		}
	}
}

func TestComposeRequiresSecretsFromEnvironment(t *testing.T) {
	for name := range requiredEnv {
		env := map[string]string{}
		for k, v := range requiredEnv {
			if k != name {
				env[k] = v
			}
		}
		if _, err := tryLoadProject(env); err == nil {
			t.Errorf("the compose file loads without %s: require it with ${%s:?...}, never default it", name, name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("without %s the error doesn't name it: %v", name, err)
		}
	}
}

// imageRef splits "repo:tag".
func imageRef(image string) (repo, tag string) {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

var pinnedTag = regexp.MustCompile(`^\d+(\.\d+)*$`)

func TestComposeImages(t *testing.T) {
	p := loadProject(t, requiredEnv)
	want := map[string]string{
		"postgresql":      "postgres",
		"temporal-schema": "temporalio/admin-tools",
		"temporal":        "temporalio/server",
		"temporal-setup":  "temporalio/admin-tools",
		"temporal-ui":     "temporalio/ui",
	}
	tags := map[string]string{}
	for name, wantRepo := range want {
		s := service(t, p, name)
		repo, tag := imageRef(s.Image)
		if repo != wantRepo {
			t.Errorf("%s: image %q, want the official %s image", name, s.Image, wantRepo)
		}
		if !pinnedTag.MatchString(tag) {
			t.Errorf("%s: image %q is not pinned to a version tag", name, s.Image)
		}
		if s.Build != nil {
			t.Errorf("%s: should use the published image, not build one", name)
		}
		tags[repo] = tag
	}
	if tags["temporalio/server"] != tags["temporalio/admin-tools"] {
		t.Errorf("temporalio/server:%s and temporalio/admin-tools:%s must be the same release (the schema tool must match the server)",
			tags["temporalio/server"], tags["temporalio/admin-tools"])
	}
	if major, _, _ := strings.Cut(tags["postgres"], "."); major != "16" {
		t.Errorf("postgresql: want postgres 16, got tag %q", tags["postgres"])
	}

	for _, s := range p.Services {
		if strings.Contains(s.Image, "auto-setup") {
			t.Errorf("%s: image %q: temporalio/auto-setup is deprecated; set the schema up with admin-tools", s.Name, s.Image)
		}
		for _, arg := range slices.Concat([]string(s.Entrypoint), []string(s.Command)) {
			if strings.Contains(arg, "auto-setup") {
				t.Errorf("%s: runs auto-setup (%q)", s.Name, arg)
			}
		}
	}

	for _, name := range []string{"tutti-migrate", "tutti-worker", "tutti-api"} {
		s := service(t, p, name)
		if s.Build == nil {
			t.Errorf("%s: no build section: compose would try to pull %q", name, s.Image)
		} else if _, err := os.Stat(filepath.Join(s.Build.Context, "Dockerfile")); err != nil {
			t.Errorf("%s: build context %s has no Dockerfile", name, s.Build.Context)
		}
		if s.Image == "" || s.Image != service(t, p, "tutti-api").Image {
			t.Errorf("%s: image %q: all Tutti services should run the same image", name, s.Image)
		}
	}
	if got := service(t, p, "tutti-worker").Command; !slices.Equal(got, types.ShellCommand{"tutti-worker"}) {
		t.Errorf("tutti-worker: command %q, want [tutti-worker]", got)
	}
	if got := service(t, p, "tutti-api").Command; !slices.Equal(got, types.ShellCommand{"tutti", "serve"}) {
		t.Errorf("tutti-api: command %q, want [tutti serve]", got)
	}
	if got := service(t, p, "tutti-migrate").Command; !slices.Equal(got, types.ShellCommand{"tutti", "migrate"}) {
		t.Errorf("tutti-migrate: command %q, want [tutti migrate]", got)
	}
}

func TestComposePublishedPorts(t *testing.T) {
	p := loadProject(t, requiredEnv)
	cases := []struct {
		service   string
		published string
		target    uint32
	}{
		{"temporal", "7233", 7233},
		{"temporal-ui", "8233", 8080},
		{"tutti-api", "8080", 8080},
	}
	for _, c := range cases {
		s := service(t, p, c.service)
		found := false
		for _, port := range s.Ports {
			if port.Published == c.published && port.Target == c.target {
				found = true
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s: port %s is published on %q by default, want 127.0.0.1 (PUBLISH_HOST opts in to more)", c.service, c.published, port.HostIP)
				}
			}
		}
		if !found {
			t.Errorf("%s: want port %s published to container port %d, have %+v", c.service, c.published, c.target, s.Ports)
		}
	}
	// Nothing else reaches the host: PostgreSQL in particular stays internal.
	for _, s := range p.Services {
		if len(s.Ports) > 0 && !slices.ContainsFunc(cases, func(c struct {
			service   string
			published string
			target    uint32
		}) bool {
			return c.service == s.Name
		}) {
			t.Errorf("%s publishes ports %+v; only temporal, temporal-ui and tutti-api should", s.Name, s.Ports)
		}
	}
	// The API listens where its port is published.
	api := service(t, p, "tutti-api")
	if addr := env(api, "TUTTI_API_ADDR"); addr != "0.0.0.0:8080" {
		t.Errorf("tutti-api: TUTTI_API_ADDR=%q, want 0.0.0.0:8080 (reachable from outside the container)", addr)
	}
}

func env(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

func TestComposeDependencyOrder(t *testing.T) {
	p := loadProject(t, requiredEnv)
	const (
		healthy   = types.ServiceConditionHealthy
		completed = types.ServiceConditionCompletedSuccessfully
	)
	want := map[string]map[string]string{
		"temporal-schema": {"postgresql": healthy},
		"temporal":        {"postgresql": healthy, "temporal-schema": completed},
		"temporal-setup":  {"temporal": healthy},
		"temporal-ui":     {"temporal": healthy},
		"tutti-migrate":   {"postgresql": healthy},
		"tutti-worker":    {"tutti-migrate": completed, "temporal": healthy, "temporal-setup": completed},
		"tutti-api":       {"tutti-migrate": completed, "temporal": healthy, "temporal-setup": completed},
	}
	for name, deps := range want {
		s := service(t, p, name)
		for dep, cond := range deps {
			d, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("%s: must depend on %s (condition %s)", name, dep, cond)
				continue
			}
			if d.Condition != cond {
				t.Errorf("%s: depends on %s with condition %q, want %q", name, dep, d.Condition, cond)
			}
		}
	}

	// Conditions that can be met: service_healthy needs a healthcheck, and
	// service_completed_successfully needs a job that exits (not restarted forever).
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, err := p.GetService(dep)
			if err != nil {
				t.Errorf("%s: depends on unknown service %s", s.Name, dep)
				continue
			}
			switch d.Condition {
			case healthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", s.Name, dep, dep)
				}
			case completed:
				if target.Restart == types.RestartPolicyAlways || target.Restart == types.RestartPolicyUnlessStopped {
					t.Errorf("%s waits for %s to complete, but %s restarts %q", s.Name, dep, dep, target.Restart)
				}
			}
		}
	}
}

var (
	secretName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL)`)
	// Shapes of real provider credentials, wherever they appear in the file.
	secretShapes = []*regexp.Regexp{
		regexp.MustCompile(`SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`), // SendGrid API key
		regexp.MustCompile(`\bAC[0-9a-f]{32}\b`),                         // Twilio account SID
		regexp.MustCompile(`\bSK[0-9a-f]{32}\b`),                         // Twilio API key
		regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	}
)

func isSentinel(v string) bool {
	for _, s := range requiredEnv {
		if v == s {
			return true
		}
	}
	return false
}

func TestComposeHasNoLiteralSecrets(t *testing.T) {
	// Interpolated with only the required variables set: a secret that isn't
	// empty and isn't one of ours is written in the file (or in a default).
	p := loadProject(t, requiredEnv)
	for _, s := range p.Services {
		for key, v := range s.Environment {
			if v == nil || *v == "" {
				continue
			}
			if secretName.MatchString(key) && !isSentinel(*v) {
				t.Errorf("%s: %s has a literal value in docker-compose.yml; use ${%s:?...} or ${%s:-}", s.Name, key, key, key)
			}
			if u, err := url.Parse(*v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && !isSentinel(pw) {
					t.Errorf("%s: %s embeds a literal password; interpolate it from the environment", s.Name, key)
				}
			}
		}
	}

	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	// A secret variable's default would be used whenever the variable is unset.
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+):?-([^}]*)\}`).FindAllSubmatch(raw, -1) {
		if secretName.Match(m[1]) && len(m[2]) > 0 {
			t.Errorf("docker-compose.yml: %s: a secret must not have a default; use ${%s:?...} or ${%s:-}", m[0], m[1], m[1])
		}
	}
	for _, re := range secretShapes {
		if loc := re.Find(raw); loc != nil {
			t.Errorf("docker-compose.yml contains what looks like a credential: %q", loc)
		}
	}
}

func TestComposeMountsAndScriptsExist(t *testing.T) {
	p := loadProject(t, requiredEnv)
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount source %s: %v", s.Name, v.Source, err)
				continue
			}
			// Files the service runs or reads from the mount must be there.
			var paths []string
			paths = append(paths, s.Entrypoint...)
			paths = append(paths, s.Command...)
			if dc := env(s, "DYNAMIC_CONFIG_FILE_PATH"); dc != "" {
				paths = append(paths, dc)
			}
			for _, path := range paths {
				rel, ok := strings.CutPrefix(path, strings.TrimSuffix(v.Target, "/")+"/")
				if !ok {
					continue
				}
				if _, err := os.Stat(filepath.Join(v.Source, rel)); err != nil {
					t.Errorf("%s: %s is mounted from %s, but: %v", s.Name, path, v.Source, err)
				}
			}
		}
	}
	// temporal reads dynamic config from a mounted file.
	temporal := service(t, p, "temporal")
	if dc := env(temporal, "DYNAMIC_CONFIG_FILE_PATH"); !strings.HasPrefix(dc, "/etc/temporal/config/dynamicconfig/") {
		t.Errorf("temporal: DYNAMIC_CONFIG_FILE_PATH=%q, want a file under the mounted /etc/temporal/config/dynamicconfig/", dc)
	}
	if db := env(temporal, "DB"); db != "postgres12" {
		t.Errorf("temporal: DB=%q, want postgres12", db)
	}
}

func TestComposeWiring(t *testing.T) {
	p := loadProject(t, requiredEnv)
	for _, name := range []string{"tutti-migrate", "tutti-worker", "tutti-api"} {
		s := service(t, p, name)
		u, err := url.Parse(env(s, "DATABASE_URL"))
		if err != nil || u.Hostname() != "postgresql" {
			t.Errorf("%s: DATABASE_URL should point at the postgresql service, got host %q (%v)", name, u.Hostname(), err)
		}
		if pw, _ := u.User.Password(); pw != requiredEnv["POSTGRES_PASSWORD"] {
			t.Errorf("%s: DATABASE_URL should use POSTGRES_PASSWORD", name)
		}
	}
	for _, name := range []string{"tutti-worker", "tutti-api", "temporal-setup", "temporal-ui"} {
		if got := env(service(t, p, name), "TEMPORAL_ADDRESS"); got != "temporal:7233" {
			t.Errorf("%s: TEMPORAL_ADDRESS=%q, want temporal:7233", name, got)
		}
	}
	w, a := service(t, p, "tutti-worker"), service(t, p, "tutti-api")
	if env(w, "TEMPORAL_NAMESPACE") != env(a, "TEMPORAL_NAMESPACE") ||
		env(w, "TEMPORAL_NAMESPACE") != env(service(t, p, "temporal-setup"), "TEMPORAL_NAMESPACE") {
		t.Error("tutti-worker, tutti-api and temporal-setup must use the same TEMPORAL_NAMESPACE")
	}
}

func TestSearchAttributesEverywhere(t *testing.T) {
	want := searchattr.Flags() // the one declaration; workflows and temporaltest use it directly

	p := loadProject(t, requiredEnv)
	got := strings.Fields(env(service(t, p, "temporal-setup"), "TUTTI_SEARCH_ATTRIBUTES"))
	if !slices.Equal(got, want) {
		t.Errorf("docker-compose.yml temporal-setup registers %q, want %q", got, want)
	}

}

// TestLibRegistersWhatTheWorkerLists: scripts/lib.sh hard-codes no search
// attribute; it registers what `tutti-worker search-attributes` prints (here
// through its `go run ./worker` fallback), each as --name N --type T.
func TestLibRegistersWhatTheWorkerLists(t *testing.T) {
	lib, err := os.ReadFile(filepath.Join(root, "scripts", "lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\b[A-Z][A-Za-z]*=(Keyword|Int|Text|Bool|Double|Datetime|KeywordList)\b`).Find(lib); m != nil {
		t.Errorf("scripts/lib.sh spells out a search attribute (%s): it should ask `tutti-worker search-attributes`", m)
	}

	dir := t.TempDir()
	fakeCLI := filepath.Join(dir, "temporal")
	argsFile := filepath.Join(dir, "args")
	if err := os.WriteFile(fakeCLI, []byte("#!/usr/bin/env bash\necho \"$*\" >"+argsFile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `. scripts/lib.sh && ensure_search_attributes 127.0.0.1:7233 tutti`)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TEMPORAL_CLI="+fakeCLI, "TUTTI_WORKER_BIN=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ensure_search_attributes: %v\n%s", err, out)
	}
	got, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "operator search-attribute create --address 127.0.0.1:7233 --namespace tutti"
	for _, f := range searchattr.Flags() {
		name, typ, _ := strings.Cut(f, "=")
		want += " --name " + name + " --type " + typ
	}
	if strings.TrimSpace(string(got)) != want {
		t.Errorf("the temporal CLI got\n  %s\nwant\n  %s", strings.TrimSpace(string(got)), want)
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	var stages []string
	for _, line := range strings.Split(df, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			stages = append(stages, f[1])
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build (builder + runtime), got FROM %v", stages)
	}
	if !strings.HasPrefix(stages[0], "golang:") {
		t.Errorf("builder stage: FROM %s, want golang", stages[0])
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	if !regexp.MustCompile(`(?m)^USER\s+(nonroot|[1-9][0-9]*)`).MatchString(final) {
		t.Error("the runtime stage must switch to a non-root USER")
	}
	for _, pkg := range []string{"./starter", "./worker"} {
		if !strings.Contains(df, pkg) {
			t.Errorf("Dockerfile doesn't build %s", pkg)
		}
	}
	for _, bin := range []string{"tutti", "tutti-worker"} {
		if !strings.Contains(final, "/out/"+bin) {
			t.Errorf("runtime stage doesn't copy %s", bin)
		}
	}

	// The builder's Go must satisfy go.mod's go directive.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	modGo := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindSubmatch(gomod)
	argGo := regexp.MustCompile(`(?m)^ARG\s+GO_VERSION=(\S+)`).FindStringSubmatch(df)
	if modGo == nil || argGo == nil {
		t.Fatalf("can't find go.mod's go directive or the Dockerfile's ARG GO_VERSION")
	}
	if version.Compare("go"+argGo[1], "go"+string(modGo[1])) < 0 {
		t.Errorf("Dockerfile GO_VERSION=%s is older than go.mod's go %s", argGo[1], modGo[1])
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{".git", ".env", "bin", ".dev"} {
		if !slices.Contains(strings.Fields(string(ignore)), must) {
			t.Errorf(".dockerignore should exclude %s", must)
		}
	}
}
