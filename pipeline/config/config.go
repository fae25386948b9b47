// Package config loads the pipeline's configuration: defaults, then an
// optional YAML file, then CHURNWATCH_* environment variables. It validates
// without touching the network. Secrets (the Kafka SASL password, the
// ClickHouse password, the HTTP access token) come only from the environment
// or from files (CHURNWATCH_*_FILE or the *_file keys), never from the YAML
// file itself, and are never logged; Masked returns a copy fit to print.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/tasks"
	"churnwatch/schemas"
)

// Defaults of a fresh install: the embedded broker and the ClickHouse server
// that deploy/local/clickhouse.sh starts.
const (
	DefaultBroker            = "127.0.0.1:19092"
	DefaultGroupID           = "churnwatch"
	DefaultStartOffset       = "earliest"
	DefaultClickHouseAddr    = "127.0.0.1:19000"
	DefaultDatabase          = "churnwatch"
	DefaultClickHouseUser    = "default"
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultTimezone          = "Asia/Shanghai"
	DefaultBatchSize         = 200000
	DefaultFlushInterval     = 250 * time.Millisecond
	DefaultRefreshInterval   = time.Minute
	DefaultMaxMessageBytes   = 64 << 10
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultBrokerPartitions  = 4
	DefaultBrokerDataDir     = ".state/broker"
	DefaultHomeNetwork       = "CMCC"
	DefaultLogLevel          = "info"
	DefaultMaxRetryBackoff   = 10 * time.Second
	DefaultInitialRetryDelay = 100 * time.Millisecond
	DefaultDiamondFen        = 50000 // 500 yuan a month
	DefaultGoldFen           = 30000
	DefaultSilverFen         = 12000 // 120 yuan: the "360 yuan a quarter" of the retention KPI
	DefaultDailySchedule     = "10 0 * * *"
)

// The default topic names of SPEC section 2, before any prefix.
const (
	TopicCDR         = "cdr.voice"
	TopicBilling     = "billing.events"
	TopicCRM         = "crm.events"
	TopicTaskUpdates = "churn.task-updates"
	TopicWarnings    = "churn.warnings"
	TopicTasks       = "churn.tasks"
)

// DLQSuffix is appended to an input topic's name to name its dead-letter topic.
const DLQSuffix = ".dlq"

// Config is the whole configuration of one churnwatch process.
type Config struct {
	Kafka      Kafka        `yaml:"kafka"`
	ClickHouse ClickHouse   `yaml:"clickhouse"`
	HTTP       HTTP         `yaml:"http"`
	Topics     Topics       `yaml:"topics"`
	Ingest     Ingest       `yaml:"ingest"`
	Broker     Broker       `yaml:"broker"`
	Rules      Rules        `yaml:"rules"`
	Tiers      Tiers        `yaml:"tiers"`
	Daily      Daily        `yaml:"daily"`
	Tasks      tasks.Config `yaml:"tasks"`
	// Access and Scorecard configure the manager workbench (workbench.go).
	Access    Access    `yaml:"access"`
	Scorecard Scorecard `yaml:"scorecard"`
	// Timezone decides what a "day" is for daily aggregates and signals.
	Timezone string `yaml:"timezone"`
	Log      Log    `yaml:"log"`
	// RulesFile, when set, holds the rules instead of rules: (same keys, at
	// its top level); `churnwatch run` reloads it on SIGHUP and on
	// POST /-/reload.
	RulesFile string `yaml:"rules_file"`
}

// Kafka says where the brokers are and how the consumer group behaves.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	GroupID string   `yaml:"group_id"`
	// StartOffset is where a group with no committed offset starts: earliest or latest.
	StartOffset string `yaml:"start_offset"`
	// TLS and SASL apply to every connection to the brokers: the consumer
	// group, the partition readers, the writers and the admin clients.
	TLS  TLS  `yaml:"tls"`
	SASL SASL `yaml:"sasl"`
}

// The SASL mechanisms of kafka.sasl.mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL authenticates to the brokers. An empty Mechanism means none.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL).
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// PasswordFile names a file holding the password; the password itself
	// comes only from there or from CHURNWATCH_KAFKA_SASL_PASSWORD. A
	// password: key in the YAML file is refused.
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"password"`
}

// TLS configures TLS to a server (a Kafka broker or ClickHouse). The
// server's certificate is verified against CAFile (the system's roots when
// empty); CertFile and KeyFile, together, give a client certificate.
type TLS struct {
	Enabled  bool   `yaml:"enabled"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate
	// (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// ClickHouse says how to reach the ClickHouse server (native protocol).
type ClickHouse struct {
	Addr     string `yaml:"addr"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// PasswordFile names a file holding the password; the password itself is
	// only ever read from there or from CHURNWATCH_CLICKHOUSE_PASSWORD. A
	// password: key in the YAML file is refused.
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"password"`
	// TLS to the native protocol's secure port (usually 9440).
	TLS TLS `yaml:"tls"`
	// Cluster, when set, names a cluster of the servers' remote_servers:
	// migrate then creates replicated local tables and Distributed tables ON
	// CLUSTER (docs/cluster.md). Empty means a single server.
	Cluster string `yaml:"cluster"`
	// Compression of the blocks sent to ClickHouse: lz4, none, or auto
	// (the default): none when Addr is a loopback address, where
	// compressing costs CPU and saves nothing, else lz4.
	Compression string `yaml:"compression"`
}

// The values of clickhouse.compression.
const (
	CompressionAuto = "auto"
	CompressionLZ4  = "lz4"
	CompressionNone = "none"
)

// Compressed reports whether blocks sent to ClickHouse are compressed
// (lz4), resolving auto by the address.
func (c ClickHouse) Compressed() bool {
	switch c.Compression {
	case CompressionLZ4:
		return true
	case CompressionNone:
		return false
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		host = c.Addr
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// HTTP configures the HTTP endpoints (metrics, health, dashboard).
type HTTP struct {
	Addr string `yaml:"addr"`
	// Token, when set, is required on every request (Authorization: Bearer
	// or ?token=); `churnwatch run` refuses a non-loopback Addr without it.
	// It comes only from CHURNWATCH_HTTP_TOKEN or the file named by TokenFile
	// (CHURNWATCH_HTTP_TOKEN_FILE); a token: key in the YAML file is refused.
	// Never logged.
	TokenFile string `yaml:"token_file"`
	Token     string `yaml:"token"`
}

// Topics holds the topic names; Prefix is prepended to every one of them.
type Topics struct {
	Prefix      string `yaml:"prefix"`
	CDR         string `yaml:"cdr"`
	Billing     string `yaml:"billing"`
	CRM         string `yaml:"crm"`
	TaskUpdates string `yaml:"task_updates"`
	Warnings    string `yaml:"warnings"`
	Tasks       string `yaml:"tasks"`
}

// Name returns a topic's full name, with the prefix.
func (t Topics) Name(base string) string { return t.Prefix + base }

// Inputs returns the full names of the three event topics the ingest consumes.
func (t Topics) Inputs() []string {
	return []string{t.Name(t.CDR), t.Name(t.Billing), t.Name(t.CRM)}
}

// All returns every topic the pipeline reads or writes, dead-letter topics
// included, with the prefix.
func (t Topics) All() []string {
	var out []string
	for _, in := range []string{t.CDR, t.Billing, t.CRM, t.TaskUpdates, t.Warnings} {
		out = append(out, t.Name(in), t.Name(in)+DLQSuffix)
	}
	return append(out, t.Name(t.Tasks))
}

// Ingest tunes batching into ClickHouse.
type Ingest struct {
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RefreshInterval is how often `churnwatch run` recomputes
	// subscriber_daily for the subscriber-days stored batches touched (the
	// daily evaluation recomputes what is still pending before it reads).
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	MaxMessageBytes int           `yaml:"max_message_bytes"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Broker configures the embedded Kafka-protocol broker (`churnwatch broker`).
type Broker struct {
	Port       int    `yaml:"port"`
	DataDir    string `yaml:"data_dir"`
	Partitions int    `yaml:"partitions"`
}

// Rules holds what the ingest needs to classify numbers; the warning
// thresholds join it with the signals.
type Rules struct {
	HomeNetwork        string   `yaml:"home_network"`
	HotlineNumbers     []string `yaml:"hotline_numbers"`
	CompetitorHotlines []string `yaml:"competitor_hotlines"`
	// NetworkPrefixes maps a network to the leading digits of its mobile
	// numbers; it replaces the default table when set.
	NetworkPrefixes map[string][]string `yaml:"network_prefixes"`
	// The signal thresholds sit beside the number lists in rules:.
	signals.Thresholds `yaml:",inline"`
}

// Tiers are the monthly-bill averages (in fen, over the last three bills)
// that make a subscriber without a profile tier diamond, gold or silver.
type Tiers struct {
	DiamondFen int64 `yaml:"diamond_fen"`
	GoldFen    int64 `yaml:"gold_fen"`
	SilverFen  int64 `yaml:"silver_fen"`
}

// Daily configures the scheduled daily evaluation.
type Daily struct {
	// Schedule is a cron spec (minute hour dom month dow) in the configured
	// time zone; the run evaluates the previous local day.
	Schedule string `yaml:"schedule"`
}

// Log configures the logger.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // json or console
}

// Default returns the configuration of a fresh install.
func Default() Config {
	return Config{
		Kafka:      Kafka{Brokers: []string{DefaultBroker}, GroupID: DefaultGroupID, StartOffset: DefaultStartOffset},
		ClickHouse: ClickHouse{Addr: DefaultClickHouseAddr, Database: DefaultDatabase, User: DefaultClickHouseUser, Compression: CompressionAuto},
		HTTP:       HTTP{Addr: DefaultHTTPAddr},
		Topics: Topics{CDR: TopicCDR, Billing: TopicBilling, CRM: TopicCRM, TaskUpdates: TopicTaskUpdates,
			Warnings: TopicWarnings, Tasks: TopicTasks},
		Ingest: Ingest{BatchSize: DefaultBatchSize, FlushInterval: DefaultFlushInterval, RefreshInterval: DefaultRefreshInterval,
			MaxMessageBytes: DefaultMaxMessageBytes, ShutdownTimeout: DefaultShutdownTimeout},
		Broker: Broker{Port: portOf(DefaultBroker), DataDir: DefaultBrokerDataDir, Partitions: DefaultBrokerPartitions},
		Rules: Rules{HomeNetwork: DefaultHomeNetwork, HotlineNumbers: []string{"10086"},
			CompetitorHotlines: []string{"10010", "10000", "10099"}, Thresholds: signals.DefaultThresholds()},
		Tiers:     Tiers{DiamondFen: DefaultDiamondFen, GoldFen: DefaultGoldFen, SilverFen: DefaultSilverFen},
		Daily:     Daily{Schedule: DefaultDailySchedule},
		Tasks:     tasks.DefaultConfig(),
		Scorecard: DefaultScorecard(),
		Timezone:  DefaultTimezone,
		Log:       Log{Level: DefaultLogLevel, Format: "json"},
	}
}

func portOf(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}

// Load builds the configuration from the defaults, the YAML file at path (if
// path is not empty) and the environment (getenv, usually os.Getenv).
// Secrets are read from the environment or from files only: a secret in the
// YAML file is an error that names the variables to use instead.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	inFile := false // the configuration file sets rules:
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config file %s: %w (see README, section Configuration)", path, err)
		}
		if rulesSectionSet(data) {
			inFile = true
		}
		var errs []error
		for _, s := range secrets(&cfg) {
			if *s.value != "" {
				errs = append(errs, fmt.Errorf("config file %s sets %s: secrets are never read from the configuration file; "+
					"set %s, or %s (or %s_file) to a file holding it", path, s.key, s.env, s.env+fileSuffix, s.key))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if err := readSecrets(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if cfg.RulesFile != "" {
		if inFile {
			return Config{}, fmt.Errorf("config file %s sets both rules: and rules_file (or %s): keep the rules in one place, "+
				"the rules file (which can be reloaded) or the rules: section", path, envRulesFile)
		}
		r, err := LoadRules(cfg.RulesFile)
		if err != nil {
			return Config{}, err
		}
		cfg.Rules = r
	}
	return cfg, cfg.Validate()
}

// fileSuffix turns a secret's variable into the variable naming a file
// that holds it, as in CHURNWATCH_KAFKA_SASL_PASSWORD_FILE.
const fileSuffix = "_FILE"

// secret is a setting that comes only from the environment or a file.
type secret struct {
	key   string  // the YAML key, refused; key+"_file" names the file
	env   string  // the variable holding it; env+"_FILE" names a file
	value *string // where it goes
	file  *string // the *_file setting
}

func secrets(cfg *Config) []secret {
	return []secret{
		{"kafka.sasl.password", "CHURNWATCH_KAFKA_SASL_PASSWORD", &cfg.Kafka.SASL.Password, &cfg.Kafka.SASL.PasswordFile},
		{"clickhouse.password", "CHURNWATCH_CLICKHOUSE_PASSWORD", &cfg.ClickHouse.Password, &cfg.ClickHouse.PasswordFile},
		{"http.token", "CHURNWATCH_HTTP_TOKEN", &cfg.HTTP.Token, &cfg.HTTP.TokenFile},
		{"access.tokens", "CHURNWATCH_ACCESS_TOKENS", &cfg.Access.Tokens, &cfg.Access.TokensFile},
	}
}

// readSecrets sets every secret from its variable, else from the file its
// _FILE variable or *_file key names (trailing newlines dropped).
func readSecrets(cfg *Config, getenv func(string) string) error {
	var errs []error
	for _, s := range secrets(cfg) {
		v, f := getenv(s.env), getenv(s.env+fileSuffix)
		if v != "" && f != "" {
			errs = append(errs, fmt.Errorf("both %s and %s are set: set only one", s.env, s.env+fileSuffix))
			continue
		}
		if f != "" {
			*s.file = f
		}
		if v != "" {
			*s.value = v
			continue
		}
		if *s.file == "" {
			continue
		}
		data, err := os.ReadFile(*s.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_file (or %s): %w", s.key, s.env+fileSuffix, err))
			continue
		}
		if *s.value = strings.TrimRight(string(data), "\r\n"); *s.value == "" {
			errs = append(errs, fmt.Errorf("%s_file (or %s): %s is empty", s.key, s.env+fileSuffix, *s.file))
		}
	}
	return errors.Join(errs...)
}

// Masked is the secret's stand-in in Masked configurations.
const Masked = "********"

// Masked returns a copy of the configuration fit to print or log: every
// secret that is set reads Masked, every one that is not stays empty.
func (c Config) Masked() Config {
	for _, s := range secrets(&c) {
		if *s.value != "" {
			*s.value = Masked
		}
	}
	return c
}

// Environment variables that applyEnv parses itself rather than through
// the envStrings, envInts and envBools tables.
const (
	envKafkaBrokers    = "CHURNWATCH_KAFKA_BROKERS"
	envFlushInterval   = "CHURNWATCH_FLUSH_INTERVAL"
	envRefreshInterval = "CHURNWATCH_REFRESH_INTERVAL"
)

// EnvVars returns, sorted, the name of every CHURNWATCH_* environment
// variable Load reads (CHURNWATCH_CONFIG, read by the command, aside).
func EnvVars() []string {
	var cfg Config
	names := []string{envKafkaBrokers, envFlushInterval, envRefreshInterval}
	for name := range envStrings(&cfg) {
		names = append(names, name)
	}
	for name := range envInts(&cfg) {
		names = append(names, name)
	}
	for name := range envBools(&cfg) {
		names = append(names, name)
	}
	for _, s := range secrets(&cfg) {
		names = append(names, s.env, s.env+fileSuffix)
	}
	slices.Sort(names)
	return names
}

// envStrings maps each string-valued environment variable to the field it
// sets (secrets aside: see secrets).
func envStrings(cfg *Config) map[string]*string {
	return map[string]*string{
		"CHURNWATCH_CLICKHOUSE_ADDR":            &cfg.ClickHouse.Addr,
		"CHURNWATCH_CLICKHOUSE_DATABASE":        &cfg.ClickHouse.Database,
		"CHURNWATCH_CLICKHOUSE_USER":            &cfg.ClickHouse.User,
		"CHURNWATCH_CLICKHOUSE_CLUSTER":         &cfg.ClickHouse.Cluster,
		"CHURNWATCH_CLICKHOUSE_COMPRESSION":     &cfg.ClickHouse.Compression,
		"CHURNWATCH_CLICKHOUSE_TLS_CA_FILE":     &cfg.ClickHouse.TLS.CAFile,
		"CHURNWATCH_CLICKHOUSE_TLS_CERT_FILE":   &cfg.ClickHouse.TLS.CertFile,
		"CHURNWATCH_CLICKHOUSE_TLS_KEY_FILE":    &cfg.ClickHouse.TLS.KeyFile,
		"CHURNWATCH_CLICKHOUSE_TLS_SERVER_NAME": &cfg.ClickHouse.TLS.ServerName,
		"CHURNWATCH_HTTP_ADDR":                  &cfg.HTTP.Addr,
		"CHURNWATCH_TOPIC_PREFIX":               &cfg.Topics.Prefix,
		"CHURNWATCH_KAFKA_GROUP_ID":             &cfg.Kafka.GroupID,
		"CHURNWATCH_KAFKA_START_OFFSET":         &cfg.Kafka.StartOffset,
		"CHURNWATCH_KAFKA_SASL_MECHANISM":       &cfg.Kafka.SASL.Mechanism,
		"CHURNWATCH_KAFKA_SASL_USERNAME":        &cfg.Kafka.SASL.Username,
		"CHURNWATCH_KAFKA_TLS_CA_FILE":          &cfg.Kafka.TLS.CAFile,
		"CHURNWATCH_KAFKA_TLS_CERT_FILE":        &cfg.Kafka.TLS.CertFile,
		"CHURNWATCH_KAFKA_TLS_KEY_FILE":         &cfg.Kafka.TLS.KeyFile,
		"CHURNWATCH_KAFKA_TLS_SERVER_NAME":      &cfg.Kafka.TLS.ServerName,
		"CHURNWATCH_TIMEZONE":                   &cfg.Timezone,
		"CHURNWATCH_LOG_LEVEL":                  &cfg.Log.Level,
		"CHURNWATCH_LOG_FORMAT":                 &cfg.Log.Format,
		"CHURNWATCH_BROKER_DATA_DIR":            &cfg.Broker.DataDir,
		envRulesFile:                            &cfg.RulesFile,
	}
}

// envInts maps each integer-valued environment variable to the field it sets.
func envInts(cfg *Config) map[string]*int {
	return map[string]*int{
		"CHURNWATCH_BROKER_PORT":       &cfg.Broker.Port,
		"CHURNWATCH_BROKER_PARTITIONS": &cfg.Broker.Partitions,
		"CHURNWATCH_BATCH_SIZE":        &cfg.Ingest.BatchSize,
	}
}

// envBools maps each boolean environment variable (true/false, 1/0) to the
// field it sets.
func envBools(cfg *Config) map[string]*bool {
	return map[string]*bool{
		"CHURNWATCH_KAFKA_TLS_ENABLED":                   &cfg.Kafka.TLS.Enabled,
		"CHURNWATCH_KAFKA_TLS_INSECURE_SKIP_VERIFY":      &cfg.Kafka.TLS.InsecureSkipVerify,
		"CHURNWATCH_CLICKHOUSE_TLS_ENABLED":              &cfg.ClickHouse.TLS.Enabled,
		"CHURNWATCH_CLICKHOUSE_TLS_INSECURE_SKIP_VERIFY": &cfg.ClickHouse.TLS.InsecureSkipVerify,
	}
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	for name, dst := range envStrings(cfg) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv(envKafkaBrokers); v != "" {
		cfg.Kafka.Brokers = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				cfg.Kafka.Brokers = append(cfg.Kafka.Brokers, b)
			}
		}
	}
	for name, dst := range envInts(cfg) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want an integer", name, v)
			}
			*dst = n
		}
	}
	for name, dst := range envBools(cfg) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", name, v)
			}
			*dst = b
		}
	}
	for name, dst := range map[string]*time.Duration{envFlushInterval: &cfg.Ingest.FlushInterval, envRefreshInterval: &cfg.Ingest.RefreshInterval} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want a duration like 500ms or 2s", name, v)
			}
			*dst = d
		}
	}
	return nil
}

// Config returns the crypto/tls configuration, or nil when TLS is not
// enabled. It reads the CA, certificate and key files.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		data, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// validate checks a TLS section named name (kafka.tls, clickhouse.tls).
func (t TLS) validate(name string, add func(string, ...any)) {
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		add("%s: files or options are set but %s.enabled is false: enable it (%s_ENABLED=true) or remove them",
			name, name, "CHURNWATCH_"+strings.ToUpper(strings.ReplaceAll(name, ".", "_")))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("%s: cert_file and key_file go together (a client certificate and its key)", name)
	}
}

// Location returns the configured time zone.
func (c Config) Location() (*time.Location, error) {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w (use an IANA name like Asia/Shanghai)", c.Timezone, err)
	}
	return loc, nil
}

// Validate checks the configuration without any network call and says what
// to fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Kafka.Brokers) == 0 {
		add("kafka.brokers is empty: set CHURNWATCH_KAFKA_BROKERS to host:port[,host:port]")
	}
	for _, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			add("kafka broker %q: want host:port", b)
		}
	}
	if c.Kafka.GroupID == "" {
		add("kafka.group_id is empty")
	}
	if c.Kafka.StartOffset != "earliest" && c.Kafka.StartOffset != "latest" {
		add("kafka.start_offset %q: want earliest or latest", c.Kafka.StartOffset)
	}
	switch sasl := c.Kafka.SASL; sasl.Mechanism {
	case "":
		if sasl.Username != "" || sasl.Password != "" {
			add("kafka.sasl: a username or password is set but no mechanism: set CHURNWATCH_KAFKA_SASL_MECHANISM to %s, %s or %s",
				SASLScramSHA512, SASLScramSHA256, SASLPlain)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if sasl.Username == "" {
			add("kafka.sasl.username is empty: set CHURNWATCH_KAFKA_SASL_USERNAME")
		}
		if sasl.Password == "" {
			add("kafka.sasl: no password: set CHURNWATCH_KAFKA_SASL_PASSWORD, or CHURNWATCH_KAFKA_SASL_PASSWORD_FILE to a file holding it")
		}
	default:
		add("kafka.sasl.mechanism %q: want %s, %s or %s (or empty for none)", sasl.Mechanism, SASLScramSHA512, SASLScramSHA256, SASLPlain)
	}
	c.Kafka.TLS.validate("kafka.tls", add)
	c.ClickHouse.TLS.validate("clickhouse.tls", add)
	if !strings.Contains(c.ClickHouse.Addr, ":") {
		add("clickhouse.addr %q: want host:port of the native protocol (usually port 9000)", c.ClickHouse.Addr)
	}
	if !schemas.ValidDatabaseName(c.ClickHouse.Database) {
		add("clickhouse.database %q: use letters, digits and underscores, starting with a letter", c.ClickHouse.Database)
	}
	if !slices.Contains([]string{CompressionAuto, CompressionLZ4, CompressionNone}, c.ClickHouse.Compression) {
		add("clickhouse.compression %q: want auto (none on a loopback address, else lz4), lz4 or none", c.ClickHouse.Compression)
	}
	if c.ClickHouse.Cluster != "" && !schemas.ValidClusterName(c.ClickHouse.Cluster) {
		add("clickhouse.cluster %q: use letters, digits, '_', '.' and '-' (a cluster of the servers' remote_servers)", c.ClickHouse.Cluster)
	}
	for name, t := range map[string]string{"cdr": c.Topics.CDR, "billing": c.Topics.Billing, "crm": c.Topics.CRM,
		"task_updates": c.Topics.TaskUpdates, "warnings": c.Topics.Warnings, "tasks": c.Topics.Tasks} {
		if t == "" {
			add("topics.%s is empty", name)
		}
	}
	if c.Ingest.BatchSize < 1 {
		add("ingest.batch_size %d: want at least 1", c.Ingest.BatchSize)
	}
	if c.Ingest.FlushInterval <= 0 {
		add("ingest.flush_interval %s: want a positive duration", c.Ingest.FlushInterval)
	}
	if c.Ingest.RefreshInterval <= 0 || c.Ingest.RefreshInterval > 24*time.Hour {
		add("ingest.refresh_interval %s: want a positive duration up to 24h (how far subscriber_daily may trail the facts between daily evaluations)", c.Ingest.RefreshInterval)
	}
	if c.Ingest.ShutdownTimeout <= 0 {
		add("ingest.shutdown_timeout %s: want a positive duration (the time to store and commit what was fetched)", c.Ingest.ShutdownTimeout)
	}
	// Readers fetch up to twice max_message_bytes, and Kafka's sizes are int32.
	if c.Ingest.MaxMessageBytes < 256 || c.Ingest.MaxMessageBytes > 1<<29 {
		add("ingest.max_message_bytes %d: want 256 to 536870912 (512 MiB)", c.Ingest.MaxMessageBytes)
	}
	if c.Broker.Partitions < 1 || c.Broker.Partitions > 10000 {
		add("broker.partitions %d: want 1 to 10000", c.Broker.Partitions)
	}
	if c.Broker.Port < 0 || c.Broker.Port > 65535 {
		add("broker.port %d: want 0-65535", c.Broker.Port)
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !(c.Tiers.DiamondFen >= c.Tiers.GoldFen && c.Tiers.GoldFen >= c.Tiers.SilverFen && c.Tiers.SilverFen > 0) {
		add("tiers: want diamond_fen ≥ gold_fen ≥ silver_fen > 0, got %d, %d, %d", c.Tiers.DiamondFen, c.Tiers.GoldFen, c.Tiers.SilverFen)
	}
	if err := c.Tasks.Validate(); err != nil {
		errs = append(errs, err)
	}
	c.Access.validate(c.HTTP.Token, add)
	c.Scorecard.validate(add)
	if _, err := cron.ParseStandard(c.Tasks.EscalationSchedule); err != nil {
		add("tasks.escalation_schedule %q: %v", c.Tasks.EscalationSchedule, err)
	}
	if _, err := cron.ParseStandard(c.Daily.Schedule); err != nil {
		add("daily.schedule %q: %v (want a cron spec like \"10 0 * * *\")", c.Daily.Schedule, err)
	}
	return errors.Join(errs...)
}
