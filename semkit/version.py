"""The package version, recorded in every stored result."""

VERSION = "0.1.0"
