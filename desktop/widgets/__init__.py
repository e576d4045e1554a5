"""Small reusable widgets; they know nothing about rooms or the engine host."""
