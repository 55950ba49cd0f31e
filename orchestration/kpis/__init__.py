"""Operational KPIs (the reference specification's Appendix B), computed from the control schema."""
