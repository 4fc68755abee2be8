"""The system model: decoder-model specs, layer DAGs, the MEC system, its dynamics, the
instance (DAG + MEC snapshot) and the cost engine.  Imports neither gymnasium nor torch."""
