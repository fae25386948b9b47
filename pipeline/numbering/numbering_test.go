package numbering

import (
	"testing"

	"churnwatch/schemas"
)

func TestNetwork(t *testing.T) {
	p := NewPlan(nil, schemas.NetworkCMCC)
	tests := []struct {
		number string
		want   schemas.Network
	}{
		{"13812345678", schemas.NetworkCMCC},
		{"+8613812345678", schemas.NetworkCMCC},
		{"8618612345678", schemas.NetworkCUCC},
		{"13312345678", schemas.NetworkCTCC},
		{"19212345678", schemas.NetworkCBN},
		{"10086", schemas.NetworkSPECIAL},
		{"10010", schemas.NetworkSPECIAL},
		{"95555", schemas.NetworkSPECIAL},
		{"+447700900123", schemas.NetworkINTL},
		{"00447700900123", schemas.NetworkINTL},
		{"059187654321", ""},
		{"11012345678", ""},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			if got := p.Network(tt.number); got != tt.want {
				t.Errorf("Network(%s) = %q, want %q", tt.number, got, tt.want)
			}
		})
	}
}

func TestCustomTableAndOffNet(t *testing.T) {
	p := NewPlan(map[schemas.Network][]string{schemas.NetworkCUCC: {"1381"}}, schemas.NetworkCUCC)
	if got := p.Network("13812345678"); got != schemas.NetworkCUCC {
		t.Errorf("custom 4-digit prefix: got %q", got)
	}
	if p.OffNet(schemas.NetworkCUCC) || p.OffNet(schemas.NetworkSPECIAL) || !p.OffNet(schemas.NetworkCMCC) || !p.OffNet("") {
		t.Error("OffNet: home and SPECIAL are on-net, everything else off-net")
	}
}
