"""Agricultural trusteeship: orders, machinery teams, dispatch, acceptance, settlement."""
