"""What tests share besides fixtures (tests/conftest.py): synthetic datasets in MNIST's format
(`datasets`), finished runs compared (`runs`), synthetic shape folders (`shapes`), the
exact-resume checks (`exactness`) and the golden runs and their recorded hashes (`golden`,
`golden_hashes.json`)."""
