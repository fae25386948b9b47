package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/ops"
)

// The image every deployment runs, and the routes the probes use.
const (
	image        = "churnwatch"
	livenessPath = "/healthz"
	readyPath    = "/readyz"
)

// dummySecret stands for a secret's value when a deployment's environment
// is evaluated: long enough for an access token.
const dummySecret = "0123456789abcdef0123456789abcdef"

// knownVars are the CHURNWATCH_* variables the code reads.
func knownVars() map[string]bool {
	known := map[string]bool{"CHURNWATCH_CONFIG": true} // read by cmd/churnwatch
	for _, v := range config.EnvVars() {
		known[v] = true
	}
	return known
}

// secretVars must come from a secret, never from a literal in a file here.
var secretVars = []string{"CHURNWATCH_KAFKA_SASL_PASSWORD", "CHURNWATCH_CLICKHOUSE_PASSWORD", "CHURNWATCH_HTTP_TOKEN"}

// requiredVars must be set by every container running `churnwatch run`.
var requiredVars = []string{"CHURNWATCH_KAFKA_BROKERS", "CHURNWATCH_CLICKHOUSE_ADDR",
	"CHURNWATCH_CLICKHOUSE_PASSWORD", "CHURNWATCH_HTTP_ADDR", "CHURNWATCH_HTTP_TOKEN"}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkEnv checks a container's environment (name → value, secrets already
// replaced by dummySecret): every CHURNWATCH_* variable is one the code
// reads, the required ones are set, the configuration loads and may listen
// beyond loopback. It returns the loaded configuration.
func checkEnv(t *testing.T, where string, env map[string]string) config.Config {
	t.Helper()
	known := knownVars()
	for name := range env {
		if strings.HasPrefix(name, "CHURNWATCH_") && !known[name] {
			t.Errorf("%s sets %s, which the code does not read (config.EnvVars)", where, name)
		}
	}
	for _, name := range requiredVars {
		if env[name] == "" {
			t.Errorf("%s does not set %s", where, name)
		}
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Errorf("%s: the configuration does not load: %v", where, err)
		return config.Default()
	}
	if err := ops.CheckExposure(cfg.HTTP.Addr, cfg.HTTP.Token); err != nil {
		t.Errorf("%s: churnwatch run would refuse to start: %v", where, err)
	}
	return cfg
}

func httpPort(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("%s: CHURNWATCH_HTTP_ADDR %q has no port", where, addr)
	}
	return n
}

// checkImage checks that ref names a tag, not latest.
func checkImage(t *testing.T, where, ref string) {
	t.Helper()
	_, tag, ok := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	if !ok || tag == "" || tag == "latest" || strings.Contains(ref, "${") {
		t.Errorf("%s: image %q is not pinned to a tag (not latest)", where, ref)
	}
}

// probeURL is a probe's target in a shell command.
var probeURL = regexp.MustCompile(`http://(?:127\.0\.0\.1|localhost):(\d+)(/[^\s"']*)`)

// checkProbe checks a shell probe command: it asks port and path, and
// sends the access token, which every endpoint requires when set.
func checkProbe(t *testing.T, where, cmd string, port int, path string) {
	t.Helper()
	m := probeURL.FindStringSubmatch(cmd)
	if m == nil {
		t.Errorf("%s: probe %q asks no http://127.0.0.1:PORT/PATH", where, cmd)
		return
	}
	if m[1] != strconv.Itoa(port) || m[2] != path {
		t.Errorf("%s: probe asks port %s path %s, want %d %s", where, m[1], m[2], port, path)
	}
	if !regexp.MustCompile(`Authorization: Bearer \$+\{?CHURNWATCH_HTTP_TOKEN\b`).MatchString(cmd) {
		t.Errorf("%s: probe %q does not send the access token from CHURNWATCH_HTTP_TOKEN", where, cmd)
	}
}

// TestRoutes checks that the probes' paths are routes of the HTTP handler,
// that answer when given the token, and refuse without it.
func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := ops.NewMetrics(reg, ops.ReadBuild())
	h := ops.NewHandler(ops.HandlerConfig{
		Token: dummySecret, Gatherer: reg, Metrics: metrics,
		Health: ops.NewHealth(failingPinger{}, kafkaconn.Conn{Brokers: []string{"127.0.0.1:1"}}, []string{"t"}, metrics, 0),
		Log:    zerolog.Nop(),
	})
	get := func(path string, token bool) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if token {
			r.Header.Set("Authorization", "Bearer "+dummySecret)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := get(livenessPath, true); code != http.StatusOK {
		t.Errorf("GET %s: status %d, want 200", livenessPath, code)
	}
	// Nothing answers here, so /readyz says not ready; a missing route would be 404.
	if code := get(readyPath, true); code != http.StatusServiceUnavailable {
		t.Errorf("GET %s with ClickHouse and Kafka down: status %d, want 503", readyPath, code)
	}
	if code := get("/no-such-route", true); code != http.StatusNotFound {
		t.Errorf("GET /no-such-route: status %d, want 404 (the check above would prove nothing)", code)
	}
	// Why the probes send the token: the endpoints refuse without it.
	if code := get(livenessPath, false); code != http.StatusUnauthorized {
		t.Errorf("GET %s without the token: status %d; if the probe paths no longer need the token, "+
			"the probes may become httpGet (and the image distroless)", livenessPath, code)
	}
}

type failingPinger struct{}

func (failingPinger) Ping(context.Context) error { return io.EOF }

// dockerfile is the parsed deploy/Dockerfile.
type dockerfile struct {
	stages []stage
}

type stage struct {
	from, name string
	instr      []instruction // after FROM
}

type instruction struct{ op, args string }

func parseDockerfile(t *testing.T, data []byte) dockerfile {
	t.Helper()
	var df dockerfile
	var logical string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if logical == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			logical += rest + " "
			continue
		}
		logical += line
		op, args, _ := strings.Cut(logical, " ")
		logical = ""
		op, args = strings.ToUpper(op), strings.TrimSpace(args)
		if op == "FROM" {
			f := strings.Fields(args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			continue // ARG before FROM
		}
		last := &df.stages[len(df.stages)-1]
		last.instr = append(last.instr, instruction{op, args})
	}
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a multi-stage build", len(df.stages))
	}
	return df
}

func goVersion(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(string(read(t, "../go.mod")), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// TestDockerfile checks the image: a multi-stage build of ./cmd/churnwatch
// with CGO_ENABLED=0 on the Go of go.mod, pinned base images, a final stage
// running as a non-root user, and the port and probe of the code.
func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t, read(t, "Dockerfile"))
	stages := map[string]bool{}
	for _, st := range df.stages {
		if !stages[st.from] {
			checkImage(t, "Dockerfile FROM", st.from)
		}
		stages[st.name] = true
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]
	if want := "golang:" + goVersion(t); !strings.HasPrefix(build.from, want) {
		t.Errorf("Dockerfile: builder %s, want %s (the go directive of go.mod)", build.from, want)
	}
	var built bool
	for _, in := range build.instr {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			if !strings.Contains(in.args, "CGO_ENABLED=0") {
				t.Errorf("Dockerfile: %q does not set CGO_ENABLED=0 (a static binary)", in.args)
			}
			if f := strings.Fields(in.args); f[len(f)-1] != "./cmd/churnwatch" {
				t.Errorf("Dockerfile: %q does not build ./cmd/churnwatch", in.args)
			}
		}
	}
	if !built {
		t.Error("Dockerfile: the first stage runs no go build")
	}
	env := map[string]string{}
	var user, expose, health string
	var copied bool
	for _, in := range final.instr {
		switch in.op {
		case "USER":
			user = in.args
		case "EXPOSE":
			expose = in.args
		case "HEALTHCHECK":
			health = in.args
		case "COPY":
			copied = copied || strings.Contains(in.args, "--from="+build.name)
		case "ENV":
			k, v, _ := strings.Cut(in.args, "=")
			env[k] = v
		}
	}
	if !copied {
		t.Errorf("Dockerfile: the final stage copies nothing from the build stage %q", build.name)
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("Dockerfile: final USER %q, want a numeric non-root user (Kubernetes runAsNonRoot checks numbers)", user)
	}
	known := knownVars()
	for k := range env {
		if strings.HasPrefix(k, "CHURNWATCH_") && !known[k] {
			t.Errorf("Dockerfile sets %s, which the code does not read", k)
		}
	}
	for _, k := range secretVars {
		if _, ok := env[k]; ok {
			t.Errorf("Dockerfile sets the secret %s", k)
		}
	}
	port := httpPort(t, "Dockerfile", env["CHURNWATCH_HTTP_ADDR"])
	if expose != strconv.Itoa(port) {
		t.Errorf("Dockerfile: EXPOSE %q, want %d, the port of CHURNWATCH_HTTP_ADDR", expose, port)
	}
	checkProbe(t, "Dockerfile HEALTHCHECK", health, port, livenessPath)
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(read(t, "compose.yaml")))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// interpolation is a compose ${VAR...} reference.
var interpolation = regexp.MustCompile(`^\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}$`)

// composeEnv evaluates a service's environment: a secret must be a
// required interpolation (${VAR:?message}) and becomes dummySecret.
func composeEnv(t *testing.T, name string, s composeService) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if slices.Contains(secretVars, k) {
			m := interpolation.FindStringSubmatch(v)
			if m == nil || !strings.HasPrefix(m[2], ":?") {
				t.Errorf("compose service %s: %s is %q, want ${VAR:?message} from the environment or .env, never a literal", name, k, v)
			}
			v = dummySecret
		}
		env[k] = v
	}
	return env
}

// TestCompose checks the local stack: pinned images, the official Kafka
// (KRaft) and ClickHouse images, churnwatch replicas whose environment
// loads, and a topic service that creates exactly Topics.All() with one
// partition count.
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	var runs, migrates int
	var topics []string
	for name, s := range c.Services {
		checkImage(t, "compose service "+name, s.Image)
		if s.Build != nil {
			if got := filepath.Clean(filepath.Join(s.Build.Context, s.Build.Dockerfile)); got != filepath.Join("..", "deploy", "Dockerfile") {
				t.Errorf("compose service %s builds %s, want deploy/Dockerfile", name, got)
			}
		}
		if !strings.HasPrefix(s.Image, image+":") {
			continue
		}
		if s.Build == nil {
			t.Errorf("compose service %s runs %s without a build section", name, s.Image)
		}
		env := composeEnv(t, name, s)
		cfg := checkEnv(t, "compose service "+name, env)
		topics = cfg.Topics.All()
		if len(s.Command) == 0 {
			t.Errorf("compose service %s: no command", name)
			continue
		}
		switch s.Command[0] {
		case "migrate":
			migrates++
		case "run":
			runs++
			if s.Deploy.Replicas < 2 {
				t.Errorf("compose service %s: %d replicas, want several in one consumer group", name, s.Deploy.Replicas)
			}
			port := httpPort(t, "compose service "+name, env["CHURNWATCH_HTTP_ADDR"])
			if len(s.Ports) == 0 {
				t.Errorf("compose service %s publishes no port", name)
			}
			for _, p := range s.Ports {
				if p[strings.LastIndex(p, ":")+1:] != strconv.Itoa(port) {
					t.Errorf("compose service %s publishes %q, want container port %d of CHURNWATCH_HTTP_ADDR", name, p, port)
				}
			}
			checkProbe(t, "compose service "+name+" healthcheck", strings.Join(s.Healthcheck.Test, " "), port, readyPath)
			if s.DependsOn["topics"].Condition != "service_completed_successfully" {
				t.Errorf("compose service %s does not wait for the topics service", name)
			}
		}
	}
	if runs != 1 || migrates != 1 {
		t.Errorf("compose: %d services run churnwatch run and %d churnwatch migrate, want 1 and 1", runs, migrates)
	}

	kafka, ok := c.Services["kafka"]
	if !ok || !strings.HasPrefix(kafka.Image, "apache/kafka:") || !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("compose: want a service kafka on apache/kafka in KRaft mode (KAFKA_PROCESS_ROLES with controller), got %+v", kafka)
	}
	ch, ok := c.Services["clickhouse"]
	if !ok || !strings.HasPrefix(ch.Image, "clickhouse/clickhouse-server:") {
		t.Errorf("compose: want a service clickhouse on clickhouse/clickhouse-server, got %+v", ch)
	}
	run := c.Services["churnwatch"]
	if ch.Environment["CLICKHOUSE_USER"] != run.Environment["CHURNWATCH_CLICKHOUSE_USER"] ||
		ch.Environment["CLICKHOUSE_DB"] != run.Environment["CHURNWATCH_CLICKHOUSE_DATABASE"] ||
		ch.Environment["CLICKHOUSE_PASSWORD"] != run.Environment["CHURNWATCH_CLICKHOUSE_PASSWORD"] {
		t.Errorf("compose: ClickHouse's CLICKHOUSE_USER, _DB, _PASSWORD differ from churnwatch's user, database, password")
	}

	ts, ok := c.Services["topics"]
	if !ok || ts.Image != kafka.Image || len(ts.Command) != 1 {
		t.Fatalf("compose: want a service topics on the Kafka image with one script as command, got %+v", ts)
	}
	created, partitions := parseTopicScript(ts.Command[0])
	if !slices.Equal(sorted(created), sorted(topics)) {
		t.Errorf("compose service topics creates %v, want Topics.All() = %v", created, topics)
	}
	if p := slices.Compact(sorted(partitions)); len(p) != 1 || len(partitions) != len(created) {
		t.Errorf("compose service topics creates %d topics with partition counts %v, want one count for all", len(created), partitions)
	}
}

// parseTopicScript returns the --topic and --partitions arguments of the
// script's create lines.
func parseTopicScript(script string) (topics, partitions []string) {
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "create" {
			continue
		}
		for i := 1; i+1 < len(f); i++ {
			switch f[i] {
			case "--topic":
				topics = append(topics, f[i+1])
			case "--partitions":
				partitions = append(partitions, f[i+1])
			}
		}
	}
	return topics, partitions
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec      yaml.Node         `yaml:"spec"`
	Data      map[string]string `yaml:"data"`
	Resources []string          `yaml:"resources"` // of a Kustomization
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    *int  `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
}

type probe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type pdbSpec struct {
	MinAvailable   any `yaml:"minAvailable"`
	MaxUnavailable any `yaml:"maxUnavailable"`
	Selector       struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		TargetPort any `yaml:"targetPort"`
	} `yaml:"ports"`
}

// loadK8s returns every object of deploy/k8s/*.yaml by kind, and the file
// names.
func loadK8s(t *testing.T) (map[string][]k8sObject, []string) {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no k8s/*.yaml: %v", err)
	}
	objs := map[string][]k8sObject{}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		dec := yaml.NewDecoder(bytes.NewReader(read(t, f)))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				t.Fatalf("%s: an object without kind", f)
			}
			objs[o.Kind] = append(objs[o.Kind], o)
		}
	}
	return objs, names
}

func one(t *testing.T, objs map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("k8s: %d objects of kind %s, want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("k8s %s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// matches says whether selector selects a pod with labels.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestKubernetes checks the manifests: a Deployment of several replicas of
// the compose file's image, its settings from the ConfigMap and its secrets
// from a Secret, an environment that loads, probes on the code's routes and
// port, resource requests, a PodDisruptionBudget and a Service selecting
// its pods.
func TestKubernetes(t *testing.T) {
	objs, files := loadK8s(t)
	cm := one(t, objs, "ConfigMap")
	d := one(t, objs, "Deployment")
	var spec deploymentSpec
	decodeSpec(t, d, &spec)
	if spec.Replicas < 2 {
		t.Errorf("k8s Deployment: %d replicas, want several", spec.Replicas)
	}
	podLabels := spec.Template.Metadata.Labels
	if !matches(spec.Selector.MatchLabels, podLabels) {
		t.Errorf("k8s Deployment: selector %v does not select its pods %v", spec.Selector.MatchLabels, podLabels)
	}
	sc := spec.Template.Spec.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Error("k8s Deployment: want runAsNonRoot: true and a non-zero runAsUser")
	}
	if len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("k8s Deployment: %d containers, want 1", len(spec.Template.Spec.Containers))
	}
	c := spec.Template.Spec.Containers[0]
	if run := loadCompose(t).Services["churnwatch"]; c.Image != run.Image {
		t.Errorf("k8s Deployment runs image %q, compose.yaml %q: want the same", c.Image, run.Image)
	}
	checkImage(t, "k8s Deployment", c.Image)
	if len(c.Args) == 0 || c.Args[0] != "run" {
		t.Errorf("k8s Deployment: args %v, want [run]", c.Args)
	}

	// The environment: the ConfigMap, then env; secrets only by reference.
	env := map[string]string{}
	var fromCM bool
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Metadata.Name {
			fromCM = true
		}
	}
	if !fromCM {
		t.Errorf("k8s Deployment: no envFrom configMapRef %s", cm.Metadata.Name)
	}
	for k, v := range cm.Data {
		if slices.Contains(secretVars, k) {
			t.Errorf("k8s ConfigMap %s holds the secret %s: use a Secret", cm.Metadata.Name, k)
		}
		env[k] = v
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = dummySecret
		case slices.Contains(secretVars, e.Name):
			t.Errorf("k8s Deployment: %s is not from a secretKeyRef", e.Name)
		case e.Value != nil:
			env[e.Name] = *e.Value
		}
	}
	for _, k := range secretVars {
		if env[k] != dummySecret {
			t.Errorf("k8s Deployment: %s does not come from a Secret", k)
		}
	}
	checkEnv(t, "k8s Deployment", env)

	port := httpPort(t, "k8s ConfigMap", env["CHURNWATCH_HTTP_ADDR"])
	var portName string
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			portName = p.Name
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Errorf("k8s Deployment: container ports %+v, want %d, the port of CHURNWATCH_HTTP_ADDR", c.Ports, port)
	}
	for _, p := range []struct {
		name, path string
		probe      *probe
		required   bool
	}{
		{"livenessProbe", livenessPath, c.LivenessProbe, true},
		{"readinessProbe", readyPath, c.ReadinessProbe, true},
		{"startupProbe", livenessPath, c.StartupProbe, false},
	} {
		where := "k8s Deployment " + p.name
		switch {
		case p.probe == nil:
			if p.required {
				t.Errorf("%s: missing", where)
			}
		case p.probe.Exec != nil:
			checkProbe(t, where, strings.Join(p.probe.Exec.Command, " "), port, p.path)
		case p.probe.HTTPGet != nil:
			// An httpGet probe cannot send the token from the Secret, and
			// every route requires it (TestRoutes).
			t.Errorf("%s: httpGet would be refused (401) without the access token; use an exec probe", where)
		default:
			t.Errorf("%s: neither exec nor httpGet", where)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("k8s Deployment: no %s request", r)
		}
	}

	var pdb pdbSpec
	decodeSpec(t, one(t, objs, "PodDisruptionBudget"), &pdb)
	if !matches(pdb.Selector.MatchLabels, podLabels) {
		t.Errorf("k8s PodDisruptionBudget: selector %v does not select the pods %v", pdb.Selector.MatchLabels, podLabels)
	}
	if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
		t.Error("k8s PodDisruptionBudget: want exactly one of minAvailable and maxUnavailable")
	}
	if n, ok := pdb.MinAvailable.(int); ok && n >= spec.Replicas {
		t.Errorf("k8s PodDisruptionBudget: minAvailable %d of %d replicas blocks every drain", n, spec.Replicas)
	}

	var svc serviceSpec
	decodeSpec(t, one(t, objs, "Service"), &svc)
	if !matches(svc.Selector, podLabels) {
		t.Errorf("k8s Service: selector %v does not select the pods %v", svc.Selector, podLabels)
	}
	for _, p := range svc.Ports {
		if p.TargetPort != portName && p.TargetPort != port {
			t.Errorf("k8s Service: targetPort %v, want %q or %d", p.TargetPort, portName, port)
		}
	}

	k := one(t, objs, "Kustomization")
	var want []string
	for _, f := range files {
		if f != "kustomization.yaml" {
			want = append(want, f)
		}
	}
	if !slices.Equal(sorted(k.Resources), want) {
		t.Errorf("k8s kustomization.yaml: resources %v, want every manifest %v", k.Resources, want)
	}
}

// TestReadme checks that deploy/README.md lists every variable the code
// reads, and no other.
func TestReadme(t *testing.T) {
	readme := string(read(t, "README.md"))
	known := knownVars()
	for v := range known {
		if !strings.Contains(readme, "`"+v+"`") {
			t.Errorf("README.md does not list `%s`", v)
		}
	}
	for _, v := range regexp.MustCompile(`CHURNWATCH_[A-Z0-9_]*[A-Z0-9]`).FindAllString(readme, -1) {
		if !known[v] {
			t.Errorf("README.md names %s, which the code does not read", v)
		}
	}
}
