package deploy_test

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/viper"

	"github.com/ringkv/ringkv/node"
)

// configKeys lists every leaf key of node.Config (dotted, from the
// mapstructure tags) with its default: the keys the server accepts.
func configKeys() map[string]any {
	keys := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			if prefix != "" {
				tag = prefix + "." + tag
			}
			if f.Type.Kind() == reflect.Struct {
				walk(tag, v.Field(i))
				continue
			}
			keys[tag] = v.Field(i).Interface()
		}
	}
	walk("", reflect.ValueOf(node.DefaultConfig()))
	return keys
}

// envKey is the environment variable of a config key, as the server names
// it: RINGKV_ and the key upper-cased with "." replaced by "_".
func envKey(key string) string {
	return "RINGKV_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// loadConfig builds a node.Config as "ringkv server" does from a YAML file
// and RINGKV_* variables (other variables are ignored, as the server
// ignores them): defaults, then the file, then the environment; an unknown
// key in either is an error, and the result must pass Validate.
func loadConfig(yamlText string, env map[string]string) (node.Config, error) {
	keys := configKeys()
	byEnv := map[string]string{}
	v := viper.New()
	for k, def := range keys {
		v.SetDefault(k, def)
		byEnv[envKey(k)] = k
	}
	if yamlText != "" {
		file := viper.New()
		file.SetConfigType("yaml")
		if err := file.ReadConfig(strings.NewReader(yamlText)); err != nil {
			return node.Config{}, fmt.Errorf("read config: %w", err)
		}
		var unknown []string
		for _, k := range file.AllKeys() {
			if _, ok := keys[k]; ok {
				v.Set(k, file.Get(k))
			} else {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			return node.Config{}, fmt.Errorf("config: unknown keys %v", unknown)
		}
	}
	for name, val := range env {
		if !strings.HasPrefix(name, "RINGKV_") || name == "RINGKV_TOKEN" {
			continue // not the server's (RINGKV_TOKEN is the CLI's)
		}
		k, ok := byEnv[name]
		if !ok {
			return node.Config{}, fmt.Errorf("environment: %s matches no config key", name)
		}
		v.Set(k, val)
	}
	var cfg node.Config
	if err := v.UnmarshalExact(&cfg); err != nil {
		return node.Config{}, fmt.Errorf("decode config: %w", err)
	}
	return cfg, cfg.Validate()
}
