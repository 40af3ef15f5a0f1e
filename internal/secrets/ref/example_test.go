package ref_test

import (
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/internal/secrets/ref"
)

func Example() {
	tmpl, err := ref.Parse("postgres://${vault:secret/data/db#user}:${vault:secret/data/db#password#3}@db/app")
	if err != nil {
		panic(err)
	}
	fmt.Println(tmpl.Refs())
	fmt.Println(ref.Paths(tmpl.Refs()))

	// A resolver reads each path once, then looks the keys up in what it read.
	secrets := map[ref.Ref]string{
		{Path: "secret/data/db", Key: "user"}:                 "app",
		{Path: "secret/data/db", Key: "password", Version: 3}: "s3cret",
	}
	v, err := tmpl.Render(func(r ref.Ref) (string, error) {
		s, ok := secrets[r]
		if !ok {
			return "", errors.New("not found")
		}
		return s, nil
	})
	fmt.Println(v, err)
	// Output:
	// [vault:secret/data/db#user vault:secret/data/db#password#3]
	// [secret/data/db]
	// postgres://app:s3cret@db/app <nil>
}

func ExampleParse_escape() {
	tmpl, _ := ref.Parse("write $${vault:PATH#KEY} for a reference; ${HOME} is left alone")
	v, _ := tmpl.Render(nil)
	fmt.Println(tmpl.HasRefs(), v)
	// Output:
	// false write ${vault:PATH#KEY} for a reference; ${HOME} is left alone
}

func ExampleParse_error() {
	_, err := ref.Parse("vault:secret/data/db")
	fmt.Println(err, errors.Is(err, ref.ErrMalformed))
	_, err = ref.Parse("url=${vault:secret/data/db#pw")
	fmt.Println(err)
	// Output:
	// vault reference "vault:secret/data/db": missing "#KEY" true
	// vault reference "${vault:secret/data/db#pw" at byte 4: missing the closing "}"
}
