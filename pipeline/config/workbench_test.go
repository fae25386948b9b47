package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAccessUsersAndTokens(t *testing.T) {
	dir := t.TempDir()
	yamlUsers := `access:
  users:
    - {name: am-017, role: manager, team: fz-am, region: fuzhou}
    - {name: sv-001, role: supervisor, team: fz-am, region: fuzhou}
    - {name: ops-1, role: admin}
`
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("users.yaml", yamlUsers)
	tokensFile := write("tokens", "# name=token\nam-017=am-017-secret-token-1\nsv-001=sv-001-secret-token-1\n")
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name, path string
		getenv     func(string) string
		wantErr    string // "" for success
		wantUsers  map[string]string
	}{
		{"tokens from the environment", users, env("CHURNWATCH_ACCESS_TOKENS", "am-017=am-017-secret-token-1, ops-1=ops-1-secret-token-1"), "",
			map[string]string{"am-017-secret-token-1": "am-017", "ops-1-secret-token-1": "ops-1"}},
		{"tokens from a file", users, env("CHURNWATCH_ACCESS_TOKENS_FILE", tokensFile), "",
			map[string]string{"am-017-secret-token-1": "am-017", "sv-001-secret-token-1": "sv-001"}},
		{"tokens in the YAML file", write("bad.yaml", yamlUsers+"  tokens: am-017=am-017-secret-token-1\n"), env(), "secrets are never read from the configuration file", nil},
		{"unknown user", users, env("CHURNWATCH_ACCESS_TOKENS", "pm-404=pm-404-secret-token-1"), `user "pm-404" is not in access.users`, nil},
		{"short token", users, env("CHURNWATCH_ACCESS_TOKENS", "am-017=short"), "shorter than 16 characters", nil},
		{"shared token", users, env("CHURNWATCH_ACCESS_TOKENS", "am-017=same-secret-token-123,sv-001=same-secret-token-123"), "have the same token", nil},
		{"dashboard token reused", users, env("CHURNWATCH_ACCESS_TOKENS", "am-017=same-secret-token-123", "CHURNWATCH_HTTP_TOKEN", "same-secret-token-123"), "is the dashboard token", nil},
		{"bad role", write("role.yaml", "access:\n  users:\n    - {name: x, role: boss}\n"), env(), `role "boss": want manager, supervisor or admin`, nil},
		{"supervisor without team", write("team.yaml", "access:\n  users:\n    - {name: x, role: supervisor}\n"), env(), "a supervisor needs a team", nil},
		{"positive escalation points", write("points.yaml", "scorecard: {escalation: 3}\n"), env(), "escalation ≤ 0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.path, tt.getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-token") {
					t.Errorf("the error shows a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.Access.UserTokens()
			if err != nil || len(got) != len(tt.wantUsers) {
				t.Fatalf("UserTokens = %v, %v; want %v", got, err, tt.wantUsers)
			}
			for tok, name := range tt.wantUsers {
				if got[tok] != name {
					t.Errorf("token of %s → %q", name, got[tok])
				}
			}
			if m := cfg.Masked(); m.Access.Tokens != Masked {
				t.Errorf("masked access tokens = %q", m.Access.Tokens)
			}
		})
	}
}
