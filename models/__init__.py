"""Style-transfer models: VGG-19, AdaIN, AesFA, MicroAST and Gatys, behind one registry (models.registry)."""
