"""Land transfer: parcels, entrustments, listings, bids, contracts, rent."""
