// Package broker runs the embedded Kafka-protocol broker used on a developer
// machine and in tests: a single kfake node that speaks the real wire
// protocol (kafka-go, librdkafka/kcat and ClickHouse's Kafka engine all work
// against it), persists to a data directory, and has the pipeline's topics.
// It is not meant for production: operators run a Kafka cluster.
package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
)

// Config configures the embedded broker.
type Config struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir persists topics, offsets and groups across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Partitions of every created topic.
	Partitions int
	// Topics to create when missing.
	Topics []string
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
}

// Start starts the broker and creates the configured topics that do not
// exist yet (existing ones, reloaded from DataDir, are kept as they are).
func Start(cfg Config) (*Broker, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(cfg.Partitions)}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir), kfake.SyncWrites())
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on port %d: %w (is another broker already listening there? set CHURNWATCH_BROKER_PORT)", cfg.Port, err)
	}
	b := &Broker{cluster: cluster}
	if err := b.CreateTopics(cfg.Partitions, cfg.Topics...); err != nil {
		cluster.Close()
		return nil, err
	}
	return b, nil
}

// CreateTopics creates topics that do not exist yet.
func (b *Broker) CreateTopics(partitions int, topics ...string) error {
	for _, t := range topics {
		if err := b.cluster.CreateTopic(t, int32(partitions), nil); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// Addrs returns the host:port addresses clients connect to.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for fault injection in tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, flushing its data directory.
func (b *Broker) Close() { b.cluster.Close() }

// Run starts the broker, logs where it listens, and serves until ctx is done.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	b, err := Start(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	log.Info().Strs("listen", b.Addrs()).Str("data_dir", cfg.DataDir).Int("partitions", cfg.Partitions).
		Strs("topics", cfg.Topics).Msg("embedded broker ready")
	<-ctx.Done()
	log.Info().Msg("embedded broker stopping")
	return nil
}

// StartScratch starts an in-process broker with the topics of cfg on a free
// port and points cfg's Kafka settings at it, for commands that run the
// pipeline on a broker of their own (eval, bench). The broker speaks
// plaintext: cfg's TLS and SASL are for the operator's cluster, not for it.
func StartScratch(cfg *config.Config) (*Broker, kafkaconn.Conn, error) {
	b, err := Start(Config{Partitions: max(cfg.Broker.Partitions, 1), Topics: cfg.Topics.All()})
	if err != nil {
		return nil, kafkaconn.Conn{}, err
	}
	cfg.Kafka.Brokers, cfg.Kafka.TLS, cfg.Kafka.SASL = b.Addrs(), config.TLS{}, config.SASL{}
	conn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		b.Close()
		return nil, kafkaconn.Conn{}, err
	}
	return b, conn, nil
}
