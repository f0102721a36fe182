CREATE TABLE `credential_epochs` (
	`name` text PRIMARY KEY NOT NULL,
	`epoch` integer NOT NULL
);
