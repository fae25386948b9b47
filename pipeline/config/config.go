// Package config loads the pipeline's configuration: defaults, then an
// optional YAML file, then CHURNWATCH_* environment variables. It validates
// without touching the network. Secrets (the ClickHouse password) come only
// from the environment or a file named in the configuration, and are never
// printed.
package config

import (
	"errors"
	"fmt"
	"io"
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
	DefaultBatchSize         = 50000
	DefaultFlushInterval     = time.Second
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
	// Timezone decides what a "day" is for daily aggregates and signals.
	Timezone string `yaml:"timezone"`
	Log      Log    `yaml:"log"`
}

// Kafka says where the brokers are and how the consumer group behaves.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	GroupID string   `yaml:"group_id"`
	// StartOffset is where a group with no committed offset starts: earliest or latest.
	StartOffset string `yaml:"start_offset"`
}

// ClickHouse says how to reach the ClickHouse server (native protocol).
type ClickHouse struct {
	Addr     string `yaml:"addr"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// PasswordFile names a file holding the password; the password itself is
	// only ever read from there or from CHURNWATCH_CLICKHOUSE_PASSWORD.
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"-"`
	// Cluster, when set, names a cluster of the servers' remote_servers:
	// migrate then creates replicated local tables and Distributed tables ON
	// CLUSTER (docs/cluster.md). Empty means a single server.
	Cluster string `yaml:"cluster"`
}

// HTTP configures the HTTP endpoints (metrics, health, dashboard).
type HTTP struct {
	Addr string `yaml:"addr"`
	// Token, when set, is required on every request (Authorization: Bearer
	// or ?token=); `churnwatch run` refuses a non-loopback Addr without it.
	// Also CHURNWATCH_HTTP_TOKEN. Never logged.
	Token string `yaml:"token"`
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
	BatchSize       int           `yaml:"batch_size"`
	FlushInterval   time.Duration `yaml:"flush_interval"`
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
		ClickHouse: ClickHouse{Addr: DefaultClickHouseAddr, Database: DefaultDatabase, User: DefaultClickHouseUser},
		HTTP:       HTTP{Addr: DefaultHTTPAddr},
		Topics: Topics{CDR: TopicCDR, Billing: TopicBilling, CRM: TopicCRM, TaskUpdates: TopicTaskUpdates,
			Warnings: TopicWarnings, Tasks: TopicTasks},
		Ingest: Ingest{BatchSize: DefaultBatchSize, FlushInterval: DefaultFlushInterval,
			MaxMessageBytes: DefaultMaxMessageBytes, ShutdownTimeout: DefaultShutdownTimeout},
		Broker: Broker{Port: portOf(DefaultBroker), DataDir: DefaultBrokerDataDir, Partitions: DefaultBrokerPartitions},
		Rules: Rules{HomeNetwork: DefaultHomeNetwork, HotlineNumbers: []string{"10086"},
			CompetitorHotlines: []string{"10010", "10000", "10099"}, Thresholds: signals.DefaultThresholds()},
		Tiers:    Tiers{DiamondFen: DefaultDiamondFen, GoldFen: DefaultGoldFen, SilverFen: DefaultSilverFen},
		Daily:    Daily{Schedule: DefaultDailySchedule},
		Tasks:    tasks.DefaultConfig(),
		Timezone: DefaultTimezone,
		Log:      Log{Level: DefaultLogLevel, Format: "json"},
	}
}

func portOf(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}

// Load builds the configuration from the defaults, the YAML file at path (if
// path is not empty) and the environment (getenv, usually os.Getenv).
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
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
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if cfg.ClickHouse.Password == "" && cfg.ClickHouse.PasswordFile != "" {
		pw, err := os.ReadFile(cfg.ClickHouse.PasswordFile)
		if err != nil {
			return Config{}, fmt.Errorf("clickhouse.password_file: %w", err)
		}
		cfg.ClickHouse.Password = strings.TrimRight(string(pw), "\r\n")
	}
	return cfg, cfg.Validate()
}

// Environment variables that applyEnv parses itself rather than through
// the envStrings and envInts tables.
const (
	envKafkaBrokers  = "CHURNWATCH_KAFKA_BROKERS"
	envFlushInterval = "CHURNWATCH_FLUSH_INTERVAL"
)

// EnvVars returns, sorted, the name of every CHURNWATCH_* environment
// variable Load reads (CHURNWATCH_CONFIG, read by the command, aside).
func EnvVars() []string {
	var cfg Config
	names := []string{envKafkaBrokers, envFlushInterval}
	for name := range envStrings(&cfg) {
		names = append(names, name)
	}
	for name := range envInts(&cfg) {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// envStrings maps each string-valued environment variable to the field it sets.
func envStrings(cfg *Config) map[string]*string {
	return map[string]*string{
		"CHURNWATCH_CLICKHOUSE_ADDR":     &cfg.ClickHouse.Addr,
		"CHURNWATCH_CLICKHOUSE_DATABASE": &cfg.ClickHouse.Database,
		"CHURNWATCH_CLICKHOUSE_USER":     &cfg.ClickHouse.User,
		"CHURNWATCH_CLICKHOUSE_PASSWORD": &cfg.ClickHouse.Password,
		"CHURNWATCH_CLICKHOUSE_CLUSTER":  &cfg.ClickHouse.Cluster,
		"CHURNWATCH_HTTP_ADDR":           &cfg.HTTP.Addr,
		"CHURNWATCH_HTTP_TOKEN":          &cfg.HTTP.Token,
		"CHURNWATCH_TOPIC_PREFIX":        &cfg.Topics.Prefix,
		"CHURNWATCH_KAFKA_GROUP_ID":      &cfg.Kafka.GroupID,
		"CHURNWATCH_KAFKA_START_OFFSET":  &cfg.Kafka.StartOffset,
		"CHURNWATCH_TIMEZONE":            &cfg.Timezone,
		"CHURNWATCH_LOG_LEVEL":           &cfg.Log.Level,
		"CHURNWATCH_LOG_FORMAT":          &cfg.Log.Format,
		"CHURNWATCH_BROKER_DATA_DIR":     &cfg.Broker.DataDir,
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
	if v := getenv(envFlushInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s=%q: want a duration like 500ms or 2s", envFlushInterval, v)
		}
		cfg.Ingest.FlushInterval = d
	}
	return nil
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
	if !strings.Contains(c.ClickHouse.Addr, ":") {
		add("clickhouse.addr %q: want host:port of the native protocol (usually port 9000)", c.ClickHouse.Addr)
	}
	if !schemas.ValidDatabaseName(c.ClickHouse.Database) {
		add("clickhouse.database %q: use letters, digits and underscores, starting with a letter", c.ClickHouse.Database)
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
	if c.Ingest.MaxMessageBytes < 256 {
		add("ingest.max_message_bytes %d: want at least 256", c.Ingest.MaxMessageBytes)
	}
	if c.Broker.Partitions < 1 {
		add("broker.partitions %d: want at least 1", c.Broker.Partitions)
	}
	if c.Broker.Port < 0 || c.Broker.Port > 65535 {
		add("broker.port %d: want 0-65535", c.Broker.Port)
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, err)
	}
	valid := map[string]bool{}
	for _, n := range schemas.Networks {
		valid[string(n)] = true
	}
	if !valid[c.Rules.HomeNetwork] {
		add("rules.home_network %q: want one of CMCC, CUCC, CTCC, CBN", c.Rules.HomeNetwork)
	}
	for n := range c.Rules.NetworkPrefixes {
		if !valid[n] {
			add("rules.network_prefixes: unknown network %q", n)
		}
	}
	if err := c.Rules.Thresholds.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !(c.Tiers.DiamondFen >= c.Tiers.GoldFen && c.Tiers.GoldFen >= c.Tiers.SilverFen && c.Tiers.SilverFen > 0) {
		add("tiers: want diamond_fen ≥ gold_fen ≥ silver_fen > 0, got %d, %d, %d", c.Tiers.DiamondFen, c.Tiers.GoldFen, c.Tiers.SilverFen)
	}
	if err := c.Tasks.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := cron.ParseStandard(c.Tasks.EscalationSchedule); err != nil {
		add("tasks.escalation_schedule %q: %v", c.Tasks.EscalationSchedule, err)
	}
	if _, err := cron.ParseStandard(c.Daily.Schedule); err != nil {
		add("daily.schedule %q: %v (want a cron spec like \"10 0 * * *\")", c.Daily.Schedule, err)
	}
	return errors.Join(errs...)
}
