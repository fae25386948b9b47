package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// SASL users of SecureBroker, one per mechanism.
const (
	UserSHA256 = "alice"
	PassSHA256 = "alice-scram-256-secret"
	UserSHA512 = "bob"
	PassSHA512 = "bob-scram-512-secret"
	UserPlain  = "carol"
	PassPlain  = "carol-plain-secret"
)

// SecureBroker starts an in-process broker (one node, on a free port) that
// requires SASL authentication, with the users above and the given topics,
// and TLS when serverTLS is not nil. It is closed when the test ends.
func SecureBroker(t testing.TB, serverTLS *tls.Config, partitions int, topics ...string) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", UserSHA256, PassSHA256),
		kfake.Superuser("SCRAM-SHA-512", UserSHA512, PassSHA512),
		kfake.Superuser("PLAIN", UserPlain, PassPlain),
		kfake.SeedTopics(int32(partitions), topics...)}
	if serverTLS != nil {
		opts = append(opts, kfake.TLS(serverTLS))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start a SASL broker: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// CA is a certificate authority made for one test, with a server
// certificate for 127.0.0.1 and localhost and a client certificate, all
// written as PEM files in a temporary directory.
type CA struct {
	CertFile                  string // the CA's certificate
	ClientCertFile, ClientKey string
	// Server is the TLS configuration of a server presenting the server
	// certificate.
	Server *tls.Config
}

// NewCA makes a CA, a server and a client certificate.
func NewCA(t testing.TB) CA {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "churnwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	caCert, err := x509.ParseCertificate(caDER)
	must(err)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage, server bool) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		must(err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		must(err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, data, 0o600))
		return p
	}
	ca := CA{CertFile: write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	srvCert, srvKey := issue(2, "localhost", x509.ExtKeyUsageServerAuth, true)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	must(err)
	ca.Server = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	cliCert, cliKey := issue(3, "churnwatch", x509.ExtKeyUsageClientAuth, false)
	ca.ClientCertFile, ca.ClientKey = write("client.pem", cliCert), write("client-key.pem", cliKey)
	return ca
}

// RequireClientCert makes the server ask for, and verify, a client
// certificate signed by the CA.
func (ca CA) RequireClientCert(t testing.TB) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	c := ca.Server.Clone()
	c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return c
}
