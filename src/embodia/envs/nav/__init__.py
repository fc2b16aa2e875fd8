"""UrbanNav: instruction-following navigation in generated MuJoCo cities."""
