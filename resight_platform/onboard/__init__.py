"""Onboarding a partner without reading code: a registry suggested from sample files, previewed
against them before anything is written, and checked as a whole (docs/onboarding.md)."""
