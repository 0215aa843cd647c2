package deploycheck_test

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func load(t *testing.T) (string, composeFile) {
	t.Helper()
	root := testenv.Root(t)
	b, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	return root, c
}

// helpOf builds a service and returns its -h output.
func helpOf(t *testing.T, root, svc string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), svc)
	build := exec.Command("go", "build", "-o", bin, "./services/"+svc+"/cmd/"+svc)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", svc, err, out)
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits non-zero by convention
	return string(out)
}

var runSecret = regexp.MustCompile(`^/run/secrets/(.+)$`)

func TestComposeNamesWhatExists(t *testing.T) {
	root, c := load(t)
	for _, svc := range bus.Services {
		name := string(svc)
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("compose.yaml lacks service %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if want := "services/" + name + "/Dockerfile"; s.Build.Dockerfile != want || s.Build.Context != "." {
				t.Fatalf("build = %+v, want context . and %s", s.Build, want)
			}
			df, err := os.ReadFile(filepath.Join(root, s.Build.Dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(df), "./services/"+name+"/cmd/"+name) {
				t.Fatalf("Dockerfile does not build ./services/%s/cmd/%s", name, name)
			}
			help := helpOf(t, root, name)
			for env, val := range s.Environment {
				if !strings.HasPrefix(env, "MCPGW_") {
					t.Errorf("unexpected variable %s", env)
					continue
				}
				flagName := "-" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "MCPGW_")), "_", "-")
				if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(flagName) + `\b`).MatchString(help) {
					t.Errorf("%s: %s names flag %s, which the binary does not have", name, env, flagName)
				}
				if m := runSecret.FindStringSubmatch(val); m != nil {
					if !contains(s.Secrets, m[1]) {
						t.Errorf("%s: %s reads secret %s that the service does not mount", name, env, m[1])
					}
				}
				if env == "MCPGW_NATS_URL" {
					checkHostPort(t, c, val, "nats", "4222")
				}
			}
			for _, sec := range s.Secrets {
				if _, ok := c.Secrets[sec]; !ok {
					t.Errorf("%s: secret %s is not declared", name, sec)
				}
			}
		})
	}
	edge := c.Services["edge"]
	_, listenPort, err := net.SplitHostPort(edge.Environment["MCPGW_LISTEN"])
	if err != nil || len(edge.Ports) != 1 || !strings.HasSuffix(edge.Ports[0], ":"+listenPort) {
		t.Errorf("edge publishes %v but listens on %q", edge.Ports, edge.Environment["MCPGW_LISTEN"])
	}
	policy := c.Services["policy"]
	spicedb := strings.Join(c.Services["spicedb"].Command, " ")
	if _, p, _ := net.SplitHostPort(policy.Environment["MCPGW_SPICEDB_ADDR"]); !strings.Contains(spicedb, "--grpc-addr :"+p) {
		t.Errorf("policy dials SpiceDB on %s; spicedb command is %q", policy.Environment["MCPGW_SPICEDB_ADDR"], spicedb)
	}
	if !strings.Contains(spicedb, "--skip-release-check=true") {
		t.Error("spicedb would call home at start")
	}
	audit := c.Services["audit"]
	if host, p, _ := net.SplitHostPort(audit.Environment["MCPGW_CLICKHOUSE_ADDR"]); host != "clickhouse" || p != "9000" {
		t.Errorf("audit dials %s, want clickhouse:9000 (native protocol)", audit.Environment["MCPGW_CLICKHOUSE_ADDR"])
	}
	for _, v := range c.Services["nats"].Volumes {
		src := strings.SplitN(v, ":", 2)[0]
		if strings.HasPrefix(src, "./") {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("nats mounts %s, which does not exist", src)
			}
		}
	}
	if _, ok := c.Services["provision"]; !ok {
		t.Error("no provision service: nobody would create the streams")
	} else if df := c.Services["provision"].Build.Dockerfile; df != "tools/Dockerfile" {
		t.Errorf("provision builds %s", df)
	}
}

func checkHostPort(t *testing.T, c composeFile, raw, wantHost, wantPort string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() != wantHost || u.Port() != wantPort {
		t.Errorf("%s: want %s:%s", raw, wantHost, wantPort)
	}
	if _, ok := c.Services[wantHost]; !ok {
		t.Errorf("%s names host %s, which is not a service", raw, wantHost)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
