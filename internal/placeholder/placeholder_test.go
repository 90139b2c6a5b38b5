package placeholder

import "testing"

func TestResolve(t *testing.T) {
	t.Setenv("PLACEHOLDER_TEST_SET", "s3cret")
	t.Setenv("PLACEHOLDER_TEST_EMPTY", "")
	tests := []struct {
		value, want, wantErr string
	}{
		{value: "", want: ""},
		{value: "plain-key", want: "plain-key"},
		{value: "{env.PLACEHOLDER_TEST_SET}", want: "s3cret"},
		{value: "Bearer {env.PLACEHOLDER_TEST_SET}", want: "Bearer s3cret"},
		{value: "{env.PLACEHOLDER_TEST_UNSET}", wantErr: "environment variable PLACEHOLDER_TEST_UNSET is not set"},
		{value: "{env.PLACEHOLDER_TEST_EMPTY}", wantErr: "environment variable PLACEHOLDER_TEST_EMPTY is not set"},
		// one set variable does not hide an unset one
		{value: "{env.PLACEHOLDER_TEST_SET}{env.PLACEHOLDER_TEST_UNSET}", wantErr: "environment variable PLACEHOLDER_TEST_UNSET is not set"},
		{value: "{unknown.placeholder}", wantErr: "resolves to an empty value"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.value)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Resolve(%q) = %q, %v; want error %q", tt.value, got, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
		}
	}
}
