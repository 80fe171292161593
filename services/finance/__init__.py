"""Finance and guarantees: loans, guarantees, risk sharing, collective income, bank feed."""
