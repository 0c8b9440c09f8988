DROP INDEX CONCURRENTLY orders_total_idx; -- ok: CUT014
