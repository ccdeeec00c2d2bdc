"""Read-outs solved in closed form (`method="min_norm"`) instead of trained."""
