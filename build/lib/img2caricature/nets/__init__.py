"""Networks: the face encoder f, the DTN's generator g and 3-way discriminator D, CycleGAN's nets."""
