"""E-commerce sales: products, orders, live-stream sessions, refunds, settlement."""
